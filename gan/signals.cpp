#include "gan/signals.h"

#include <atomic>
#include <csignal>
#include <cstring>
#include <mutex>

#include <fmt/format.h>

namespace wn::gan {

namespace {

constexpr int kSignals[3] = {SIGINT, SIGTERM, SIGHUP};
std::atomic<int> g_signal{0};
std::mutex g_mu;
int g_depth = 0;
struct sigaction g_old[3];

std::atomic<int> g_saving{0}, g_pending{0};

// The default action of sig: the process ends.
void die(int sig) {
  struct sigaction sa {};
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, nullptr);
  raise(sig);
}

void on_signal(int sig) {
  if (g_signal.exchange(sig) == 0) return;  // the first: a flag the loops check
  // The second ends the process, once a checkpoint being written is whole.
  if (g_saving.load() > 0)
    g_pending = sig;
  else
    die(sig);
}

}  // namespace

StopSignals::StopSignals() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_depth++ > 0) return;
  g_signal = 0;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &sa, &g_old[i]);
}

StopSignals::~StopSignals() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (--g_depth > 0) return;
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &g_old[i], nullptr);
  g_signal = 0;  // nothing listens any more
}

int stop_signal() { return g_signal.load(std::memory_order_relaxed); }

Interrupted::Interrupted(int sig) : std::runtime_error(fmt::format("stopped by {}", strsignal(sig))), sig_(sig) {}

void throw_if_stopped() {
  if (const int s = stop_signal()) throw Interrupted(s);
}

SavingSection::SavingSection() { ++g_saving; }

SavingSection::~SavingSection() {
  if (--g_saving == 0)
    if (const int sig = g_pending.exchange(0)) die(sig);
}

}  // namespace wn::gan
