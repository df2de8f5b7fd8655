// wngan: batch and weight normalization in GANs, the command line.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "apps/commands.h"
#include "engine/dist/comm.h"

namespace {

// "rank 1 failed: MESSAGE", what the other ranks report.
std::string fmt_rank(int rank, const std::string& what) { return "rank " + std::to_string(rank) + " failed: " + what; }
// "rank 1: " under mpirun with several ranks, else nothing.
std::string rank_prefix() {
  const wn::dist::Comm& w = wn::dist::world();
  return w.size() > 1 ? "rank " + std::to_string(w.world_rank()) + ": " : "";
}

// Edit distance, for "did you mean".
size_t distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// Ends the process after an error. Under mpirun, another rank's failure is acknowledged
// (so that rank may stop waiting); a failure of this rank is announced to the others, whose
// next collective then ends naming it; MPI is not finalized (collectives may be pending).
int fail(int code, bool peer_failed, const std::string& what) {
  if (!wn::dist::active()) return code;
  wn::dist::Comm& w = wn::dist::world();
  if (peer_failed)
    w.acknowledge_failure();
  else
    w.announce_failure(fmt_rank(w.world_rank(), what));
  wn::dist::abandon(code);
}

// The entry point without MPI's set-up and tear-down.
int run(int argc, char** argv);

}  // namespace

int main(int argc, char** argv) {
  wn::dist::init(&argc, &argv);
  const int code = run(argc, argv);
  wn::dist::finalize();
  return code;
}

namespace {

int run(int argc, char** argv) {
  CLI::App app{"wngan: the effects of batch and weight normalization in GANs", "wngan"};
  app.option_defaults()->always_capture_default();  // every option's help shows its default
  app.set_version_flag("--version", std::string("wngan ") + WNGAN_VERSION);
  app.require_subcommand(1);
  wn::app::add_gradcheck(app);
  wn::app::add_train(app);
  wn::app::add_eval(app);
  wn::app::add_study(app);
  wn::app::add_inspect(app);
  wn::app::add_sample(app);
  wn::app::add_split(app);
  wn::app::add_summary(app);
  wn::app::add_bench(app);
  wn::app::add_presets(app);
  if (argc > 1 && argv[1][0] != '-') {
    const std::string cmd = argv[1];
    std::vector<std::string> names;
    for (const CLI::App* sub : app.get_subcommands({})) names.push_back(sub->get_name());
    // `wngan help [COMMAND]`.
    if (cmd == "help") {
      const CLI::App* sub = nullptr;
      if (argc > 2)
        for (const CLI::App* s : app.get_subcommands({}))
          if (s->get_name() == argv[2]) sub = s;
      std::fputs((sub ? sub->help() : app.help()).c_str(), stdout);
      return 0;
    }
    if (std::find(names.begin(), names.end(), cmd) == names.end()) {
      std::string best;
      size_t best_d = 3;  // suggest only a near miss
      for (const auto& n : names)
        if (size_t d = distance(cmd, n); d < best_d) best_d = d, best = n;
      std::fprintf(stderr, "wngan: unknown command '%s'%s; `wngan help` lists the commands\n", cmd.c_str(),
                   best.empty() ? "" : (" (did you mean '" + best + "'?)").c_str());
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // 128 + the signal that stopped a run (after saving it)
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help, the version or the usage error
    return code == 0 ? 0 : 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "wngan: error: out of memory (the model, batch or data set is too large for this machine)\n");
    return fail(1, false, "out of memory");
  } catch (const wn::dist::RankFailed& e) {
    std::fprintf(stderr, "wngan: %s; stopping\n", e.what());
    return fail(1, true, e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wngan: %serror: %s\n", rank_prefix().c_str(), e.what());
    return fail(1, false, e.what());
  }
  return 0;
}

}  // namespace
