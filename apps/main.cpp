// wngan: batch and weight normalization in GANs, the command line.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include <dlfcn.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "apps/commands.h"
#include "apps/commit.h"
#include "engine/backend/cpu/sgemm.h"
#include "engine/dist/comm.h"
#include "engine/switches.h"
#include "nn/checkpoint.h"
#include "gan/data.h"
#include "gan/signals.h"
#include "eval/provenance.h"

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

// The nearest of names to s within an edit distance of 2 (3 for long names), or "".
std::string nearest(const std::string& s, const std::vector<std::string>& names) {
  std::string best;
  size_t best_d = s.size() > 6 ? 4 : 3;
  for (const auto& n : names)
    if (size_t d = distance(s, n); d < best_d) best_d = d, best = n;
  return best;
}

// The command of that name, or null.
const CLI::App* find_command(const CLI::App& app, const std::string& name) {
  for (const CLI::App* sub : app.get_subcommands({}))
    if (sub->get_name() == name) return sub;
  return nullptr;
}

// `wngan` alone: the commands, one line each.
std::string command_list(const CLI::App& app) {
  std::string s = "wngan: the effects of batch and weight normalization in GANs\n\nusage: wngan COMMAND [OPTIONS]\n\n"
                  "commands:\n";
  for (const CLI::App* sub : app.get_subcommands({}))
    s += fmt::format("  {:<10} {}\n", sub->get_name(), sub->get_description());
  s += "\n`wngan help COMMAND` shows a command's options; `wngan --version` the build; docs/cli.md all of them.\n";
  return s;
}

// Whether a shared library can be loaded here (the run-time parts: cuDNN, NCCL).
bool loadable(const char* name) {
  void* h = dlopen(name, RTLD_LAZY | RTLD_LOCAL);
  if (h) dlclose(h);
  return h != nullptr;
}

// `wngan --version`: version, commit, build, compiler, backends, the CPU GEMM kernel.
std::string version_text() {
  const wn::eval::BuildInfo& b = wn::eval::build_info();
  std::string s = fmt::format("wngan {}\ncommit: {}\nbuild: {}, {}\n", b.version, b.commit, wn::eval::build_type(),
                              wn::eval::compiler());
#ifdef WN_HAVE_CUDA
  s += fmt::format("CUDA backend: built; cuDNN at run time: {}\n",
                   loadable("libcudnn.so.9") || loadable("libcudnn.so") ? "found (libcudnn.so.9)" : "not found");
#else
  s += "CUDA backend: not built\n";
#endif
#ifdef WN_HAVE_MPI
  s += "MPI: built (mpirun -np N wngan ...)\n";
#else
  s += "MPI: not built\n";
#endif
#ifdef WN_HAVE_NCCL
  s += fmt::format("NCCL: built; at run time: {}\n",
                   loadable("libnccl.so.2") || loadable("libnccl.so") ? "found (libnccl.so.2)" : "not found");
#else
  s += "NCCL: not built\n";
#endif
  s += fmt::format("CPU GEMM kernel: {}\nprocessor: {}\n", wn::sgemm_kernel_name(), wn::eval::cpu_model());
  s += "environment switches set: " + wn::eval::switches_text() + " (docs/cli.md lists them)\n";
  return s;
}

// The first word of argv past the command that looks like an option the command does
// not have ("--iter" of "--iter=10"), or "".
std::string unknown_option(const CLI::App* sub, int argc, char** argv) {
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") break;
    if (a.size() < 2 || a[0] != '-' || (a[1] >= '0' && a[1] <= '9') || a[1] == '.') continue;
    if (const auto eq = a.find('='); eq != std::string::npos) a = a.substr(0, eq);
    if (!sub->get_option_no_throw(a) && a != "-h" && a != "--help") return a;
  }
  return "";
}

// The long option names of a command ("--iters", ...).
std::vector<std::string> option_names(const CLI::App* sub) {
  std::vector<std::string> names;
  for (const CLI::Option* o : sub->get_options())
    for (const auto& n : o->get_lnames()) names.push_back("--" + n);
  return names;
}

// The entry point without MPI's set-up and tear-down.
int run(int argc, char** argv);

}  // namespace

int main(int argc, char** argv) {
  // Every environment switch is checked once, before anything reads one (MPI's set-up included).
  try {
    wn::check_switches();
  } catch (const wn::SwitchError& e) {
    std::fprintf(stderr, "wngan: error: %s\n", e.what());
    return 2;
  }
  wn::dist::init(&argc, &argv);
  const int code = run(argc, argv);
  wn::dist::finalize();
  return code;
}

namespace {

int run(int argc, char** argv) {
  wn::eval::set_build_info({WNGAN_VERSION, WNGAN_COMMIT}, std::vector<std::string>(argv, argv + argc));
  CLI::App app{"wngan: the effects of batch and weight normalization in GANs", "wngan"};
  app.option_defaults()->always_capture_default();  // every option's help shows its default
  app.add_flag_callback(
      "--version", [] { throw CLI::CallForVersion(version_text(), 0); },
      "Print the version, commit, build, backends and CPU GEMM kernel, then exit");
  app.require_subcommand(1);
  wn::app::add_train(app);
  wn::app::add_study(app);
  wn::app::add_eval(app);
  wn::app::add_sample(app);
  wn::app::add_split(app);
  wn::app::add_summary(app);
  wn::app::add_presets(app);
  wn::app::add_inspect(app);
  wn::app::add_gradcheck(app);
  wn::app::add_bench(app);
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands({})) names.push_back(sub->get_name());
  auto unknown_command = [&](const std::string& cmd) {
    const std::string best = nearest(cmd, names);
    std::fprintf(stderr, "wngan: unknown command '%s'%s; `wngan help` lists the commands\n", cmd.c_str(),
                 best.empty() ? "" : (" (did you mean '" + best + "'?)").c_str());
    return 2;
  };
  if (argc == 1) {
    std::fputs(command_list(app).c_str(), stderr);
    return 2;
  }
  const CLI::App* sub = nullptr;
  if (argv[1][0] != '-') {
    const std::string cmd = argv[1];
    // `wngan help [COMMAND]`.
    if (cmd == "help") {
      if (argc == 2) {
        std::fputs(command_list(app).c_str(), stdout);
        return 0;
      }
      const CLI::App* s = find_command(app, argv[2]);
      if (!s) return unknown_command(argv[2]);
      std::fputs(s->help().c_str(), stdout);
      return 0;
    }
    if (std::find(names.begin(), names.end(), cmd) == names.end()) return unknown_command(cmd);
    sub = find_command(app, cmd);
  }
  const std::string cmd_name = sub ? "wngan " + sub->get_name() : "wngan";
  // A usage error: what is wrong, how to see the options; exit code 2.
  auto usage_error = [&](const std::string& what) {
    std::fprintf(stderr, "%s: error: %s\n", cmd_name.c_str(), what.c_str());
    if (sub) std::fprintf(stderr, "`wngan help %s` lists its options\n", sub->get_name().c_str());
    return fail(2, false, what);
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // 128 + the signal that stopped a run (after saving it)
  } catch (const wn::gan::Interrupted& e) {
    std::fprintf(stderr, "\n%s: %s; what was saved stays\n", cmd_name.c_str(), e.what());
    return fail(128 + e.signal(), false, e.what());
  } catch (const CLI::CallForVersion& e) {
    std::fputs(e.what(), stdout);
    return 0;
  } catch (const CLI::CallForHelp&) {
    std::fputs((sub ? sub->help() : command_list(app)).c_str(), stdout);
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::fputs(app.help("", CLI::AppFormatMode::All).c_str(), stdout);
    return 0;
  } catch (const CLI::ExtrasError& e) {
    if (sub) {
      if (const std::string opt = unknown_option(sub, argc, argv); !opt.empty()) {
        const std::string best = nearest(opt, option_names(sub));
        return usage_error(fmt::format("unknown option '{}'{}", opt,
                                       best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best)));
      }
    }
    std::string what = e.what();
    for (const char* p : {"The following arguments were not expected: ", "The following argument was not expected: "})
      if (what.rfind(p, 0) == 0) what = "unexpected argument(s): " + what.substr(std::strlen(p));
    return usage_error(what);
  } catch (const CLI::ParseError& e) {
    return usage_error(e.what());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: error: out of memory (the model, batch or data set is too large for this machine)\n",
                 cmd_name.c_str());
    return fail(1, false, "out of memory");
  } catch (const wn::dist::RankFailed& e) {
    std::fprintf(stderr, "wngan: %s; stopping\n", e.what());
    return fail(1, true, e.what());
  } catch (const wn::gan::DataSpecError& e) {
    // --data names no usable data set: a usage error.
    std::fprintf(stderr, "%s: %serror: %s\n", cmd_name.c_str(), rank_prefix().c_str(), e.what());
    return fail(2, false, e.what());
  } catch (const std::invalid_argument& e) {
    // A value or a combination of options that cannot work: a usage error.
    std::fprintf(stderr, "%s: %serror: %s\n", cmd_name.c_str(), rank_prefix().c_str(), e.what());
    return fail(2, false, e.what());
  } catch (const std::exception& e) {
    const std::string msg = wn::nn::error_text(e);
    std::fprintf(stderr, "%s: %serror: %s\n", cmd_name.c_str(), rank_prefix().c_str(), msg.c_str());
    return fail(1, false, msg);
  }
  return 0;
}

}  // namespace
