// The study layer, output files, signals and switches (docs/reliability.md): nothing a
// study, a resume or a mistyped path can lose or mix. Each case drives the built program
// as a user would, one class of failure at a time.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app_helpers.h"
#include "eval/report.h"
#include "gan/grad_trace.h"
#include "gan/run_config.h"
#include "gan/signals.h"
#include "gan/trainer.h"
#include "nn/checkpoint.h"

namespace fs = std::filesystem;
using wn::eval::read_text;

namespace {

// The program under test: the build's, or WNGAN_TEST_BIN (to run these cases against
// another build, e.g. an older one, and see which fail there).
std::string bin() {
  const char* e = std::getenv("WNGAN_TEST_BIN");
  return e && *e ? e : WNGAN_BIN;
}

// Writes text to path, making its folder.
void write_text(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// `wngan ARGS` (shell words); its exit code (128 + signal when one ended it) and output.
std::pair<int, std::string> wngan(const std::string& args, const std::string& env = "") {
  static int count = 0;
  const std::string out = wn::test::temp_dir("rel") + "/out" + std::to_string(count++) + ".txt";
  const int rc = std::system(
      (env + " " + bin() + " " + args + " > '" + out + "' 2>&1 < /dev/null").c_str());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc), read_text(out)};
}

// A program started in the background, its output in a file. One that no wait_end saw
// end (a REQUIRE failed on the way) is killed when the test leaves its scope.
struct Background {
  pid_t pid = -1;
  std::string log;
  mutable bool ended = false;
  Background() = default;
  Background(Background&& o) noexcept : pid(o.pid), log(std::move(o.log)), ended(o.ended) { o.pid = -1; }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;
  ~Background() {
    if (pid > 0 && !ended) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
};
Background start(const std::string& args) {
  static int count = 0;
  Background b;
  b.log = wn::test::temp_dir("rel") + "/bg" + std::to_string(count++) + ".txt";
  b.pid = fork();
  if (b.pid == 0) {
    const int fd = ::open(b.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execl("/bin/sh", "sh", "-c", ("exec " + bin() + " " + args).c_str(), (char*)nullptr);
    _exit(127);
  }
  return b;
}
// Waits (at most s seconds) until the log holds text.
bool wait_for(const Background& b, const std::string& text, double s) {
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < s) {
    if (has(read_text(b.log), text)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}
// Waits (at most s seconds) for the program to end: its exit code (128 + signal), or -1
// when it did not end in time (it is then killed).
int wait_end(const Background& b, double s) {
  const auto t0 = std::chrono::steady_clock::now();
  int status = 0;
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < s) {
    if (waitpid(b.pid, &status, WNOHANG) == b.pid) {
      b.ended = true;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(b.pid, SIGKILL);
  waitpid(b.pid, &status, 0);
  b.ended = true;
  return -1;
}

// Generated MNIST-format data and the options of a tiny model on it.
std::string tiny_data(const std::string& d) {
  fs::create_directories(d + "/data");
  return wn::test::write_mnist(d + "/data", 64, 40, [](uint32_t i, int p) { return (i * 29 + p * 7) % 256; });
}
std::string model(const std::string& data) { return fmt::format("--data {} --nf 4 --code 4 --batch 8", data); }
std::string tiny(const std::string& data) { return model(data) + " --threads 1 --final-test 16 --sample-every 5"; }
std::string tiny_study(const std::string& data, const std::string& out, const std::string& models = "none,weight",
                       int64_t final_steps = 3) {
  return fmt::format("study {} --models {} --iters 6 --test-every 3 --running-test 8 --final-n 8 "
                     "--final-steps {} --test-steps 2 --out '{}'",
                     tiny(data), models, final_steps, out);
}

}  // namespace

TEST_CASE("reliability 1: a device node given as an output is written into, not replaced; two outputs of one file are refused") {
  const std::string d = wn::test::temp_dir("rel_out"), data = tiny_data(d), node = d + "/null";
  if (::mknod(node.c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0) {
    const auto [rc, out] = wngan("inspect " + model(data) + " --csv '" + node + "' --out '" + d + "/tapes'");
    CHECK_MESSAGE(rc == 0, out);
    CHECK(fs::is_character_file(node));
  } else {
    MESSAGE("mknod refused (not root): the node case is not checked");
  }
  const auto [rc2, out2] = wngan("inspect " + model(data) + " --json '" + d + "/x' --csv '" + d + "/x' --out '" + d + "/t2'");
  CHECK(rc2 == 2);
  CHECK(has(out2, "--json and --csv name the same file"));
  CHECK(!fs::exists(d + "/x"));
  CHECK(!fs::exists(d + "/t2"));
  const auto [rc3, out3] = wngan("inspect " + model(data) + " --csv '" + d + "/t3/tape_dcgan_weight_G.dot' --out '" + d + "/t3'");
  CHECK(rc3 == 2);
  CHECK(has(out3, "is a file the command writes into --out"));
  fs::remove_all(d);
}

TEST_CASE("reliability 3: a signal during the final test, or after the last iteration, ends the run at once with rc 128 + signal") {
  const std::string d = wn::test::temp_dir("rel_sig"), data = tiny_data(d);
  // A long final test: the signal arrives while it reconstructs.
  Background b = start("train " + tiny(data) + " --iters 2 --test-every 0 --final-n 16 --final-steps 1000000 --out '" + d + "/r'");
  REQUIRE(wait_for(b, "data path:", 60));  // training is over; the final test begins
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(b.pid, SIGTERM);
  CHECK(wait_end(b, 20) == 128 + SIGTERM);
  CHECK(has(read_text(b.log), "stopped by"));
  CHECK(fs::exists(d + "/r/checkpoints/last.safetensors"));  // the training's state is saved
  CHECK(!fs::exists(d + "/r/report/report.html"));
  // A finished run resumed with nothing left to train: the final test again, interrupted.
  Background b2 = start("train --resume '" + d + "/r' --final-n 16 --final-steps 1000000");
  REQUIRE(wait_for(b2, "data path:", 60));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  kill(b2.pid, SIGINT);
  CHECK(wait_end(b2, 20) == 128 + SIGINT);
  // Two signals during training: the first saves and stops; the second would end it at once.
  Background b3 = start("train " + tiny(data) + " --iters 100000 --test-every 0 --log-every 1 --out '" + d + "/r3'");
  REQUIRE(wait_for(b3, "iter 3/", 60));
  kill(b3.pid, SIGTERM);
  kill(b3.pid, SIGTERM);
  const int rc3 = wait_end(b3, 20);
  CHECK((rc3 == 128 + SIGTERM));
  fs::remove_all(d);
}

TEST_CASE("reliability 3: a study stops at a signal between runs or in a final test, and resumes") {
  const std::string d = wn::test::temp_dir("rel_sig_study"), data = tiny_data(d);
  Background b = start(tiny_study(data, d + "/s", "none,weight", 1000000));
  REQUIRE(wait_for(b, "== none (seed 1)", 60));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // its 6 iterations, then its final test
  kill(b.pid, SIGTERM);
  CHECK(wait_end(b, 20) == 128 + SIGTERM);
  // The interrupted run is not recorded as failed (nor as finished).
  const std::string state = fs::exists(d + "/s/study.json") ? read_text(d + "/s/study.json") : "{}";
  CHECK(!has(state, "\"error\""));
  fs::remove_all(d);
}

TEST_CASE("reliability 4: one writer per study folder") {
  const std::string d = wn::test::temp_dir("rel_lock"), data = tiny_data(d);
  REQUIRE(wngan(tiny_study(data, d + "/s")).first == 0);
  CHECK(!fs::exists(d + "/s/.lock"));  // a study that ended leaves no lock behind
  const std::string before = read_text(d + "/s/study.json");
  // Another process holds the study (as a running study does).
  fs::create_directories(d + "/s");
  const int fd = ::open((d + "/s/.lock").c_str(), O_RDWR | O_CREAT, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);
  const auto [rc, out] = wngan(tiny_study(data, d + "/s") + " --resume");
  CHECK(rc == 1);
  CHECK(has(out, "is in use by another wngan process"));
  const auto [rc2, out2] = wngan(tiny_study(data, d + "/s") + " --force");
  CHECK(rc2 == 1);
  CHECK(fs::exists(d + "/s/runs/none_seed1/checkpoints/last.safetensors"));  // --force deleted nothing
  CHECK(read_text(d + "/s/study.json") == before);
  ::close(fd);
  fs::remove(d + "/s/.lock");
  fs::remove_all(d);
}

TEST_CASE("reliability 5: study --resume retries failed runs, refuses options that would mix results, continues for more iterations") {
  const std::string d = wn::test::temp_dir("rel_resume"), data = tiny_data(d), s = d + "/s";
  // A run that fails: the study finishes the others and exits 1.
  const auto [rc0, out0] = wngan(tiny_study(data, s), "WNGAN_FAIL_AT=0:4");
  CHECK_MESSAGE(rc0 == 1, out0);
  CHECK(has(out0, "runs failed"));
  nlohmann::json st = nlohmann::json::parse(read_text(s + "/study.json"));
  CHECK(st["none_seed1"].contains("error"));
  // Resumed: the failed runs are retried (not "finished before, kept" forever).
  const auto [rc1, out1] = wngan(tiny_study(data, s) + " --resume");
  CHECK_MESSAGE(rc1 == 0, out1);
  CHECK(has(out1, "failed before"));
  CHECK(has(out1, "retried"));
  st = nlohmann::json::parse(read_text(s + "/study.json"));
  CHECK(!st["none_seed1"].contains("error"));
  CHECK(st["none_seed1"]["dir"] == "runs/none_seed1");  // relative to the study folder (class 6)
  const std::string csv = read_text(s + "/results.csv");
  // An option that changes what a run computes: refused by name, nothing trained or rewritten.
  const auto [rc2, out2] = wngan(tiny_study(data, s) + " --resume --lr 0.001");
  CHECK(rc2 == 2);
  CHECK(has(out2, "lr: the study has 0.0001, 0.001 given"));
  const auto [rc3, out3] = wngan(tiny_study(data, s, "none,weight", 5) + " --resume");
  CHECK(rc3 == 2);
  CHECK_MESSAGE(has(out3, "its final test has 8 images x 3 steps, 8 x 5 given"), out3);
  CHECK(read_text(s + "/results.csv") == csv);
  // More iterations for all: every finished run is continued, tested again and recorded.
  std::string longer = tiny_study(data, s);
  longer.replace(longer.find("--iters 6"), 9, "--iters 9");
  const auto [rc4, out4] = wngan(longer + " --resume");
  CHECK_MESSAGE(rc4 == 0, out4);
  CHECK(has(out4, "finished at 6 iterations; continued to 9"));
  for (const char* run : {"none_seed1", "weight_seed1"})
    CHECK(wn::nn::load_safetensors(s + "/runs/" + run + "/checkpoints/last.safetensors").metadata.at("iteration") == "9");
  fs::remove_all(d);
}

TEST_CASE("reliability 6: a study folder moved elsewhere resumes and reports from its own runs") {
  const std::string d = wn::test::temp_dir("rel_move"), data = tiny_data(d);
  // Made with a path relative to the working directory, as a user types it.
  REQUIRE(wngan(tiny_study(data, "a/s"), "cd '" + d + "' &&").first == 0);
  fs::rename(d + "/a/s", d + "/moved");
  fs::remove_all(d + "/a");
  fs::remove_all(d + "/moved/strips");
  fs::remove_all(d + "/moved/figures");
  const auto [rc, out] = wngan(tiny_study(data, d + "/moved") + " --resume");
  CHECK_MESSAGE(rc == 0, out);
  CHECK(has(out, "finished before, kept"));
  CHECK(fs::exists(d + "/moved/strips/weight_seed1.png"));  // the figures found their runs again
  CHECK(fs::exists(d + "/moved/figures/reconstructions_seed1.png"));
  fs::remove_all(d);
}

TEST_CASE("reliability 3: a signal that arrives before a run's loop (or after its last check) still stops it, saved") {
  const std::string d = wn::test::temp_dir("rel_sig_edge"), data = tiny_data(d);
  REQUIRE(wngan("train " + tiny(data) + " --iters 3 --test-every 0 --no-final-test --out '" + d + "/r'").first == 0);
  wn::gan::StopSignals command;  // as train and study hold one
  wn::gan::TrainConfig c = wn::gan::load_train_config(d + "/r");
  wn::gan::Trainer t(c, true);  // a finished run resumed: nothing left to train
  std::raise(SIGTERM);          // e.g. while the data loaded
  CHECK_FALSE(t.run());
  CHECK(t.interrupted_by() == SIGTERM);
  CHECK(wn::nn::load_safetensors(d + "/r/checkpoints/last.safetensors").metadata.at("iteration") == "3");
  fs::remove_all(d);
}

TEST_CASE("reliability 7: eval refuses another run's checkpoint instead of filing its results as this run's") {
  const std::string d = wn::test::temp_dir("rel_eval"), data = tiny_data(d);
  REQUIRE(wngan("train " + tiny(data) + " --iters 3 --test-every 3 --final-n 4 --final-steps 2 --out '" + d + "/a'").first == 0);
  REQUIRE(wngan("train " + tiny(data) + " --norm batch --iters 3 --test-every 3 --final-n 4 --final-steps 2 --out '" + d + "/b'").first == 0);
  const std::string before = read_text(d + "/a/eval.csv");
  const auto [rc, out] = wngan("eval '" + d + "/a' --checkpoint '" + d + "/b/checkpoints/best.safetensors' --n 4 --steps 2");
  CHECK(rc == 2);
  CHECK(has(out, "is not one of"));
  CHECK(read_text(d + "/a/eval.csv") == before);
  CHECK(wngan("eval '" + d + "/a' --checkpoint '" + d + "/a/checkpoints/best.safetensors' --n 4 --steps 2").first == 0);
  fs::remove_all(d);
}

TEST_CASE("reliability 8: a new run starts in an empty folder; a start that fails leaves nothing behind") {
  const std::string d = wn::test::temp_dir("rel_fresh"), data = tiny_data(d);
  fs::create_directories(d + "/left");
  std::ofstream(d + "/left/grad_trace.csv") << wn::gan::kTraceHeader << "\n1,D,D.x,grad_norm:weight,1\n";
  const auto [rc, out] = wngan("train " + tiny(data) + " --iters 2 --out '" + d + "/left'");
  CHECK(rc == 1);
  CHECK(has(out, "is not empty (grad_trace.csv)"));
  // A failed start: nothing stays to block the retry.
  const auto [rc2, out2] = wngan("train --data mnist --iters 2 --out '" + d + "/new'");
  CHECK(rc2 == 2);
  CHECK(!fs::exists(d + "/new"));
  const auto [rc3, out3] = wngan("train " + tiny(data) + " --crop 100 --iters 2 --out '" + d + "/new'");
  CHECK(rc3 != 0);
  CHECK_MESSAGE(!fs::exists(d + "/new"), out3);
  const auto [rc4, out4] = wngan("train " + tiny(data) + " --iters 2 --final-n 4 --final-steps 2 --out '" + d + "/new'");
  CHECK_MESSAGE(rc4 == 0, out4);
  fs::remove_all(d);
}

TEST_CASE("reliability 9: values that could not be used later are refused at the start") {
  const std::string d = wn::test::temp_dir("rel_values"), data = tiny_data(d);
  CHECK(wngan("train " + tiny(data) + " --seed -1 --out '" + d + "/r'").first == 2);
  CHECK(wngan("train " + tiny(data) + " --seed 18446744073709551615 --out '" + d + "/r'").first == 2);
  const auto [rc, out] = wngan(tiny_study(data, d + "/s", "weight,weight"));
  CHECK(rc == 2);
  CHECK(has(out, "'weight' is named twice"));
  CHECK(wngan(tiny_study(data, d + "/s", "''")).first == 2);
  const auto [rc2, out2] = wngan("train --preset celeba-resnet --arch dcgan --out '" + d + "/r'");
  CHECK(rc2 == 2);
  CHECK(has(out2, "--preset celeba-resnet is for --arch resnet"));
  CHECK(!fs::exists(d + "/r"));
  CHECK(!fs::exists(d + "/s"));
  fs::remove_all(d);
}

TEST_CASE("reliability 10: trace files as CSV writers make them; what does not parse is refused, never deleted") {
  const std::string d = wn::test::temp_dir("rel_trace");
  const std::string h = wn::gan::kTraceHeader;
  auto write = [&](const std::string& text) {
    std::ofstream(d + "/grad_trace.csv", std::ios::binary) << text;
    return d + "/grad_trace.csv";
  };
  // CRLF line ends: every row.
  CHECK(wn::gan::read_trace(write(h + "\r\n1,D,D.a,q,0.5\r\n2,G,G.b,q,1.5\r\n")).size() == 2);
  // No header: refused, naming what the first line is (its first row is not taken as a header).
  CHECK_THROWS_WITH(wn::gan::read_trace(write("1,D,D.a,q,0.5\n")), doctest::Contains("not a gradient trace"));
  // A damaged row: refused with its line number; trimming it (a resume) keeps the file as it was.
  const std::string damaged = h + "\n1,D,D.a,q,0.5\n2,D,D.a,q,zz\n3,D,D.a,q,0.7\n";
  CHECK_THROWS_WITH(wn::gan::read_trace(write(damaged)), doctest::Contains("line 3"));
  CHECK_THROWS(wn::gan::trim_trace(write(damaged), 2));
  CHECK(read_text(d + "/grad_trace.csv") == damaged);
  // A row cut off by a crash (no newline) is dropped; the rest is kept.
  CHECK(wn::gan::read_trace(write(h + "\n1,D,D.a,q,0.5\n2,D,D.a")).size() == 1);
  CHECK_THROWS_WITH(wn::gan::read_trace(write("")), doctest::Contains("an empty file"));
  CHECK_THROWS_WITH(wn::gan::read_trace(write("\x89PNG\r\n\x1a\n\x01\x02")), doctest::Contains("not a gradient trace"));
  fs::remove(d + "/grad_trace.csv");
  fs::create_directories(d + "/grad_trace.csv");
  CHECK_THROWS_WITH(wn::gan::read_trace(d + "/grad_trace.csv"), doctest::Contains("is a folder"));
  fs::remove_all(d + "/grad_trace.csv");
  REQUIRE(::mkfifo((d + "/grad_trace.csv").c_str(), 0644) == 0);
  CHECK_THROWS_WITH(wn::gan::read_trace(d + "/grad_trace.csv"), doctest::Contains("not a regular file"));  // no hang
  fs::remove(d + "/grad_trace.csv");
  fs::remove_all(d);
}

TEST_CASE("reliability 8: --force loses nothing when the new start fails; a study's run and a train run are kept apart") {
  const std::string d = wn::test::temp_dir("rel_force"), data = tiny_data(d), r = d + "/r";
  REQUIRE(wngan("train " + tiny(data) + " --iters 2 --final-n 4 --final-steps 2 --out '" + r + "'").first == 0);
  const std::string ckpt = read_text(r + "/checkpoints/last.safetensors"), cfg = read_text(r + "/config.json");
  // Refused values and a failure while starting: the old run is as it was.
  CHECK(wngan("train " + tiny(data) + " --iters 2 --force --image-size 7 --out '" + r + "'").first == 2);
  CHECK(wngan("train " + tiny(data) + " --iters 2 --force --crop 40 --out '" + r + "'").first != 0);
  CHECK(wngan("train " + tiny(data) + " --iters 2 --force --split '" + r + "/split.json' --out '" + r + "'").first == 2);
  CHECK(read_text(r + "/checkpoints/last.safetensors") == ckpt);
  CHECK(read_text(r + "/config.json") == cfg);
  CHECK(!fs::exists(r + "/.replaced"));
  // --force that starts: the old run is replaced.
  CHECK(wngan("train " + tiny(data) + " --iters 3 --force --no-final-test --out '" + r + "'").first == 0);
  CHECK(wn::nn::load_safetensors(r + "/checkpoints/last.safetensors").metadata.at("iteration") == "3");
  CHECK(!fs::exists(r + "/.replaced"));
  // --force into a folder that holds another file too: refused, and the run it was to
  // replace is back where it was.
  write_text(r + "/notes.txt", "mine");
  const auto [rc_n, out_n] = wngan("train " + tiny(data) + " --iters 2 --force --out '" + r + "'");
  CHECK(rc_n == 1);
  CHECK(has(out_n, "is not empty (notes.txt)"));
  CHECK(wn::nn::load_safetensors(r + "/checkpoints/last.safetensors").metadata.at("iteration") == "3");
  CHECK(!fs::exists(r + "/.replaced"));
  fs::remove(r + "/notes.txt");
  // A set-aside left by a --force that was killed outright is never thrown away by the next.
  write_text(r + "/.replaced/checkpoints/last.safetensors", "the only copy");
  const auto [rc_k, out_k] = wngan("train " + tiny(data) + " --iters 2 --force --out '" + r + "'");
  CHECK(rc_k == 1);
  CHECK(has(out_k, ".replaced holds a run set aside by a --force that never finished"));
  CHECK(read_text(r + "/.replaced/checkpoints/last.safetensors") == "the only copy");
  CHECK(wn::nn::load_safetensors(r + "/checkpoints/last.safetensors").metadata.at("iteration") == "3");
  fs::remove_all(r + "/.replaced");
  // A study into a train run's folder, or train into a study's run, is refused.
  const auto [rc, out] = wngan(tiny_study(data, r));
  CHECK(rc == 1);
  CHECK(has(out, "holds a train run"));
  REQUIRE(wngan(tiny_study(data, d + "/s")).first == 0);
  const auto [rc2, out2] = wngan("train " + tiny(data) + " --iters 2 --force --out '" + d + "/s/runs/none_seed1'");
  CHECK(rc2 == 2);
  CHECK(has(out2, "is a run of the study"));
  // The model aliases are the same model: named twice, refused.
  CHECK(has(wngan(tiny_study(data, d + "/s2", "weight,wn")).second, "named twice"));
  fs::remove_all(d);
}

TEST_CASE("reliability 5: a resume cannot take training back; study.json is checked, not trusted") {
  const std::string d = wn::test::temp_dir("rel_back"), data = tiny_data(d), s = d + "/s";
  REQUIRE(wngan(tiny_study(data, s)).first == 0);
  std::string shorter = tiny_study(data, s);
  shorter.replace(shorter.find("--iters 6"), 9, "--iters 3");
  const auto [rc, out] = wngan(shorter + " --resume");
  CHECK(rc == 2);
  CHECK(has(out, "--iters 3 is below its 6"));
  // train --resume with fewer iterations than trained.
  REQUIRE(wngan("train " + tiny(data) + " --iters 4 --no-final-test --out '" + d + "/r'").first == 0);
  const auto [rc2, out2] = wngan("train --resume '" + d + "/r' --iters 2");
  CHECK(rc2 == 2);
  CHECK(has(out2, "has trained 4 iterations already"));
  CHECK(wn::gan::load_train_config(d + "/r").iters == 4);
  // A hand edit that points one model's row at another's, or a wrong type: refused.
  const std::string good = read_text(s + "/study.json");
  nlohmann::json j = nlohmann::json::parse(good);
  j["none_seed1"]["model"] = "weight";
  std::ofstream(s + "/study.json") << j.dump();
  CHECK(has(wngan(tiny_study(data, s) + " --resume").second, "the names disagree"));
  j = nlohmann::json::parse(good);
  j["none_seed1"]["final_test"] = "abc";
  std::ofstream(s + "/study.json") << j.dump();
  CHECK(has(wngan(tiny_study(data, s) + " --resume").second, "is not a number"));
  fs::remove_all(d);
}

TEST_CASE("reliability 1, 7: symbolic links are followed, not replaced; inputs are never outputs; eval takes only the run's own model") {
  const std::string d = wn::test::temp_dir("rel_links"), data = tiny_data(d);
  REQUIRE(wngan("train " + tiny(data) + " --iters 3 --test-every 3 --final-n 4 --final-steps 2 --out '" + d + "/r'").first == 0);
  fs::create_directories(d + "/real");
  fs::create_symlink(d + "/real/grid.png", d + "/link.png");
  CHECK(wngan("sample --checkpoint '" + d + "/r' --n 4 --out '" + d + "/link.png'").first == 0);
  CHECK(fs::is_symlink(d + "/link.png"));
  CHECK(fs::is_regular_file(d + "/real/grid.png"));
  // sample's codes file is not its output.
  wn::Generator g(1);
  wn::nn::save_safetensors(d + "/z.safetensors", {{"z", wn::randn({2, 4}, g)}});
  const std::string z = read_text(d + "/z.safetensors");
  CHECK(wngan("sample --checkpoint '" + d + "/r' --z '" + d + "/z.safetensors' --out '" + d + "/z.safetensors'").first == 2);
  CHECK(read_text(d + "/z.safetensors") == z);
  // inspect --run does not write its pictures among the run's files.
  REQUIRE(wngan("train " + tiny(data) + " --iters 2 --trace-grads 1 --no-final-test --out '" + d + "/t'").first == 0);
  CHECK(wngan("inspect --run '" + d + "/t' --out '" + d + "/t'").first == 2);
  CHECK(wngan("inspect --run '" + d + "/t'").first == 0);
  // A checkpoint of another model copied into the run is refused.
  REQUIRE(wngan("train " + tiny(data) + " --norm batch --iters 3 --test-every 3 --final-n 4 --final-steps 2 --out '" + d + "/b'").first == 0);
  fs::copy_file(d + "/b/checkpoints/best.safetensors", d + "/r/checkpoints/other.safetensors");
  const auto [rc, out] = wngan("eval '" + d + "/r' --checkpoint '" + d + "/r/checkpoints/other.safetensors' --n 4 --steps 2");
  CHECK(rc == 2);
  CHECK(has(out, "evaluate the run it belongs to"));
  fs::remove_all(d);
}

TEST_CASE("reliability 1, 5, 9: an output never overwrites an input or a run's files; a resumed study keeps its seeds and models") {
  const std::string d = wn::test::temp_dir("rel_inputs"), data = tiny_data(d), r = d + "/r";
  REQUIRE(wngan("train " + tiny(data) + " --iters 2 --no-final-test --out '" + r + "'").first == 0);
  const std::string ckpt = read_text(r + "/checkpoints/last.safetensors"), cfg = read_text(r + "/config.json");
  const std::string idx = read_text(d + "/data/t10k-images-idx3-ubyte");
  const std::string insp = "inspect " + model(data) + " --out '" + d + "/ins'";
  CHECK(wngan(insp + " --checkpoint '" + r + "/checkpoints/last.safetensors' --json '" + r + "/checkpoints/last.safetensors'").first == 2);
  CHECK(wngan(insp + " --json '" + d + "/data/t10k-images-idx3-ubyte'").first == 2);
  CHECK(wngan(insp + " --csv '" + r + "/config.json'").first == 2);
  {
    const auto [rc_split, out_split] = wngan("split --data " + data + " --final-test 10 --running-test 5 --out '" + r + "/split.json'");
    CHECK(rc_split == 2);
    CHECK_MESSAGE(has(out_split, "is a file of the run"), out_split);
  }
  CHECK(wngan("inspect " + model(data) + " --out '" + r + "'").first == 2);  // tapes among a run's files
  CHECK(read_text(r + "/checkpoints/last.safetensors") == ckpt);
  CHECK(read_text(r + "/config.json") == cfg);
  CHECK(read_text(d + "/data/t10k-images-idx3-ubyte") == idx);
  CHECK(wngan("sample --checkpoint '" + r + "' --n 4 --seed -1 --out '" + d + "/g.png'").first == 2);
  // A resumed study with another --seed or fewer --models would leave its runs out of the table.
  REQUIRE(wngan(tiny_study(data, d + "/s")).first == 0);
  const auto [rc, out] = wngan(tiny_study(data, d + "/s") + " --resume --seed 2");
  CHECK(rc == 2);
  CHECK(has(out, "none_seed1: a run of this study that --models none,weight and --seed 2 --seeds 1 leave out"));
  CHECK(wngan(tiny_study(data, d + "/s", "none") + " --resume").first == 2);
  CHECK(!fs::exists(d + "/s/runs/none_seed2"));
  fs::remove_all(d);
}

TEST_CASE("reliability 1, 7, 9: a pipe nobody reads, a same-model checkpoint of another run, evals of other sizes, a finished run resumed, --iters 0, sizes beyond reach") {
  const std::string d = wn::test::temp_dir("rel_edges"), data = tiny_data(d), r = d + "/r";
  // A FIFO with no reader is refused at once (a plain open would wait forever).
  const std::string fifo = d + "/fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  const Background b = start("split --data " + data + " --final-test 10 --running-test 5 --out '" + fifo + "'");
  const int rc_fifo = wait_end(b, 60);
  CHECK(rc_fifo == 1);
  CHECK(has(read_text(b.log), "a pipe that no process is reading"));
  CHECK(fs::is_fifo(fifo));
  // Another run of the same model with another seed: its checkpoint copied into r is refused.
  const std::string run = tiny(data) + " --iters 3 --test-every 3 --final-n 4 --final-steps 2";
  REQUIRE(wngan("train " + run + " --out '" + r + "'").first == 0);
  REQUIRE(wngan("train " + run + " --seed 7 --out '" + d + "/o'").first == 0);
  fs::copy_file(d + "/o/checkpoints/best.safetensors", r + "/checkpoints/copied.safetensors");
  const std::string eval_csv = read_text(r + "/eval.csv");
  const auto [rc_c, out_c] = wngan("eval '" + r + "' --checkpoint '" + r + "/checkpoints/copied.safetensors' --n 4 --steps 2");
  CHECK(rc_c == 2);
  CHECK(has(out_c, "was saved by another run ('seed' = 7 there, 1 in"));
  CHECK(read_text(r + "/eval.csv") == eval_csv);
  // The same seed and schedule on another split: told apart by the split's fingerprint.
  REQUIRE(wngan("split --data " + data + " --final-test 16 --running-test 16 --seed 5 --out '" + d + "/split5.json'").first == 0);
  REQUIRE(wngan("train " + run + " --split '" + d + "/split5.json' --out '" + d + "/o5'").first == 0);
  fs::copy_file(d + "/o5/checkpoints/best.safetensors", r + "/checkpoints/split5.safetensors");
  const auto [rc_sp, out_sp] = wngan("eval '" + r + "' --checkpoint '" + r + "/checkpoints/split5.safetensors' --n 4 --steps 2");
  CHECK(rc_sp == 2);
  CHECK_MESSAGE(has(out_sp, "was saved by another run (its split (fingerprint"), out_sp);
  CHECK(read_text(r + "/eval.csv") == eval_csv);
  // A resume takes only the run's own checkpoints: another run's last is refused, nothing written.
  const std::string r2 = d + "/r2";
  REQUIRE(wngan("train " + run + " --no-final-test --out '" + r2 + "'").first == 0);
  fs::copy_file(d + "/o5/checkpoints/last.safetensors", r2 + "/checkpoints/last.safetensors",
                fs::copy_options::overwrite_existing);
  const std::string metrics2 = read_text(r2 + "/metrics.csv");
  const auto [rc_r, out_r] = wngan("train --resume '" + r2 + "' --iters 6");
  CHECK(rc_r != 0);
  CHECK(has(out_r, "a run resumes only from its own checkpoints"));
  CHECK(read_text(r2 + "/metrics.csv") == metrics2);
  // Evals of other sizes keep their own files: the final test's survive.
  const std::string per = read_text(r + "/eval/best_4images_2steps_per_image.csv");
  REQUIRE(wngan("eval '" + r + "' --n 2 --steps 2").first == 0);
  CHECK(read_text(r + "/eval/best_4images_2steps_per_image.csv") == per);
  CHECK(fs::exists(r + "/eval/best_2images_2steps_per_image.csv"));
  // A finished run resumed does nothing (no second final test, no new row).
  const std::string rows = read_text(r + "/eval.csv");
  const auto [rc_f, out_f] = wngan("train --resume '" + r + "'");
  CHECK(rc_f == 0);
  CHECK(has(out_f, "nothing to do"));
  CHECK(read_text(r + "/eval.csv") == rows);
  // --iters 0 says what it did.
  const auto [rc_0, out_0] = wngan("train " + tiny(data) + " --iters 0 --out '" + d + "/z'");
  CHECK(rc_0 == 0);
  CHECK(has(out_0, "--iters 0: nothing trained"));
  // Sizes no machine could hold are usage errors before anything is written.
  const auto [rc_s, out_s] = wngan("train " + tiny(data) + " --image-size 100000 --out '" + d + "/big'");
  CHECK(rc_s == 2);
  CHECK(has(out_s, "more than the 8192 a side may have"));
  CHECK(!fs::exists(d + "/big"));
  fs::remove_all(d);
}

TEST_CASE("error_text: filesystem errors name the path and the reason in words") {
  const std::filesystem::filesystem_error e("cannot create directories", "/x/y",
                                            std::make_error_code(std::errc::permission_denied));
  CHECK(wn::nn::error_text(e) == "cannot create directories: '/x/y': Permission denied");
  const std::runtime_error plain("as it is");
  CHECK(wn::nn::error_text(plain) == "as it is");
}

TEST_CASE("reliability 3: a signal inside a running test keeps the iteration: last saved, its metrics row written, resumable") {
  const std::string d = wn::test::temp_dir("rel_sig_running"), data = tiny_data(d), r = d + "/r";
  // The first running test (at iteration 2) takes very long: the signal arrives inside it.
  Background b = start("train " + tiny(data) + " --iters 4 --test-every 2 --log-every 1 --running-test 8 "
                       "--test-steps 100000000 --no-final-test --out '" + r + "'");
  REQUIRE(wait_for(b, "iter 1/", 60));  // iteration 2's line comes after its test
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  kill(b.pid, SIGTERM);
  CHECK(wait_end(b, 30) == 128 + SIGTERM);
  CHECK(has(read_text(b.log), "in the running test at iteration 2"));
  REQUIRE(fs::exists(r + "/checkpoints/last.safetensors"));
  CHECK(wn::nn::load_safetensors(r + "/checkpoints/last.safetensors").metadata.at("iteration") == "2");
  const std::string metrics = read_text(r + "/metrics.csv");
  CHECK(std::count(metrics.begin(), metrics.end(), '\n') == 1 + 2);  // the header and iterations 1, 2
  fs::remove_all(d);
}
