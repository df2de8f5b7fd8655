// Stopping on SIGINT (Ctrl-C), SIGTERM (a scheduler's warning) and SIGHUP (a closed
// terminal). While a StopSignals lives, the first such signal only sets a flag that the
// long loops check (training saves `last` and stops; a reconstruction or a study stops
// between steps or runs); a second signal ends the process at once, as if no handler were
// installed (after a checkpoint being written is complete: SavingSection). Commands hold
// one for their whole run, so a signal at any point is honoured.
#pragma once
#include <stdexcept>
#include <string>

namespace wn::gan {

// Installs the handlers for its lifetime (nested guards share the first one's).
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
};

// The signal received while a StopSignals lives (0: none).
int stop_signal();

// Thrown where work stops on a signal outside the training loop; the program exits with
// 128 + signal() (what a shell reports for a process the signal ended).
struct Interrupted : std::runtime_error {
  explicit Interrupted(int sig);
  int signal() const { return sig_; }

 private:
  int sig_;
};

// Throws Interrupted if a signal was received.
void throw_if_stopped();

// While one lives (a checkpoint being written), a second signal waits for it to end
// instead of ending the process half-way through the file.
class SavingSection {
 public:
  SavingSection();
  ~SavingSection();
  SavingSection(const SavingSection&) = delete;
  SavingSection& operator=(const SavingSection&) = delete;
};

}  // namespace wn::gan
