// Run folders and runs under misuse: an existing run is neither mixed with a new one nor
// written by two processes; --resume refuses options that change the run; metrics rows
// are never lost; SIGTERM and SIGHUP save like SIGINT; divergence stops the run; empty
// work and out-of-range options are refused with short messages.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "apps/commands.h"
#include "gan/run_config.h"
#include "gan/run_dir.h"
#include "gan/trainer.h"
#include "app_helpers.h"
#include "nn/checkpoint.h"

using namespace wn;
using namespace wn::gan;
namespace fs = std::filesystem;

namespace {
std::string make_data(const std::string& dir) {
  return wn::test::write_mnist(dir, 60, 10, [](uint32_t i, int p) { return (p * 7 + int(i) * 13) % 256; });
}
TrainConfig tiny(const std::string& data, const std::string& out) {
  TrainConfig c = wn::test::tiny_config(data, out, 4, 8, 4, 10, 5);
  c.test_every = 5;
  c.iters = 10;
  return c;
}
void quiet(Trainer& t) {
  t.log = [](const std::string&) {};
  t.running_test = [](nn::Module&, const Tensor&) { return 0.5; };
}
std::string read_bytes(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
std::string cli(const std::vector<std::string>& args) { return wn::test::cli_error(args); }
}  // namespace

TEST_CASE("a folder that holds a run is not trained into again unless --resume or --force; --force clears it") {
  const std::string d = wn::test::temp_dir("refuse");
  const std::string data = make_data(d);
  {
    Trainer t(tiny(data, d + "/run"), false);
    quiet(t);
    CHECK(t.run());
  }
  REQUIRE(fs::exists(d + "/run/checkpoints/best.safetensors"));
  fs::create_directories(d + "/run/report");
  CHECK_THROWS_WITH(Trainer(tiny(data, d + "/run"), false), doctest::Contains("holds a run already"));
  TrainConfig f = tiny(data, d + "/run");
  f.force = true;
  f.test_every = 0;  // no running test: a stale best would stand out
  {
    Trainer t(f, false);
    quiet(t);
    CHECK(t.run());
  }
  CHECK_FALSE(fs::exists(d + "/run/checkpoints/best.safetensors"));
  CHECK_FALSE(fs::exists(d + "/run/report"));
  CHECK(fs::exists(d + "/run/checkpoints/last.safetensors"));
  fs::remove_all(d);
}

TEST_CASE("two processes never write one run: the second is refused naming the folder") {
  const std::string d = wn::test::temp_dir("lock");
  const std::string data = make_data(d);
  Trainer a(tiny(data, d + "/run"), false);
  CHECK_THROWS_WITH(Trainer(tiny(data, d + "/run"), true), doctest::Contains("in use by another wngan process"));
  // Another process (a fork) is refused too, while this one holds the lock.
  const std::string lock = d + "/run/.lock";
  const pid_t pid = ::fork();
  if (pid == 0) {  // only async-signal-safe calls in the child of a threaded process
    const int fd = ::open(lock.c_str(), O_RDWR);
    ::_exit(fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) != 0 ? 3 : 0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(WEXITSTATUS(status) == 3);
  fs::remove_all(d);
}

TEST_CASE("--resume: options that change the run are refused by name; --iters and the like are applied") {
  const std::string d = wn::test::temp_dir("resumeopt");
  const std::string data = make_data(d);
  const std::string run = d + "/run";
  CHECK(cli({"train", "--data", data, "--nf", "4", "--code", "8", "--batch", "4", "--iters", "4", "--final-test", "10",
             "--test-every", "2", "--no-final-test", "--out", run}) == "");
  const std::string e1 = cli({"train", "--resume", run, "--lr", "0.5", "--batch", "8", "--iters", "6", "--no-final-test"});
  CHECK(e1.find("--lr: the run has 0.0001, 0.5 given") != std::string::npos);
  CHECK(e1.find("--batch: the run has 4, 8 given") != std::string::npos);
  CHECK(cli({"train", "--resume", run, "--norm", "batch", "--no-final-test"}).find("--norm") != std::string::npos);
  CHECK(cli({"train", "--resume", run, "--force"}).find("cannot go with --resume") != std::string::npos);
  // Agreeing options and --iters are fine.
  CHECK(cli({"train", "--resume", run, "--batch", "4", "--nf", "4", "--iters", "6", "--no-final-test"}) == "");
  nn::TensorFile f = nn::load_safetensors(run + "/checkpoints/last.safetensors");
  CHECK(f.metadata.at("iteration") == "6");
  CHECK(load_train_config(run).iters == 6);
  fs::remove_all(d);
}

TEST_CASE("the run folder's CSV rows read back as written; lists split in one place; options parse by name") {
  CHECK(format_metrics_row({12, 0.5, 0.25, 1.5, 0.0123, 0.0421}) == "12,0.5,0.25,1.5,0.0123,0.0421");
  CHECK(format_metrics_row({3, 1, 2, 3, 0.5, -1}) == "3,1,2,3,0.5000,");
  const auto row = parse_metrics_row("12,0.5,0.25,1.5,0.0123,0.0421");
  REQUIRE(row);
  CHECK(row->iteration == 12);
  CHECK(row->d_fake == 0.25);
  CHECK(row->running_test == 0.0421);
  const auto no_test = parse_metrics_row("3,1,2,3,0.5000,");
  REQUIRE(no_test);
  CHECK(no_test->running_test < 0);
  CHECK_FALSE(parse_metrics_row("11,0.1"));
  CHECK_FALSE(parse_metrics_row("1x,a,b,c,d,"));
  CHECK(std::string(kEvalHeader) == "checkpoint,iteration,images,steps,final_test_loss,train_loss,seconds");
  CHECK(format_per_image_row(7, "train", 0.5) == "7,train,0.5\n");
  CHECK(split_list("a,,b,") == std::vector<std::string>{"a", "b"});
  CHECK(split_list("a,,b,", ',', true) == std::vector<std::string>{"a", "", "b", ""});
  CHECK(split_list("").empty());
  CHECK(parse_protocol("simultaneous") == Protocol::Simultaneous);
  CHECK(std::string(protocol_name(Protocol::Alternating)) == "alternating");
  CHECK(std::string(loss_name(parse_loss("ls"))) == "ls");
  CHECK_THROWS_WITH(parse_protocol("both"), doctest::Contains("expected alternating or simultaneous"));
  CHECK_THROWS_WITH(parse_arch("vgg"), doctest::Contains("unknown architecture 'vgg'"));
}

TEST_CASE("metrics.csv: rows that cannot be written are kept and written later; a resume keeps 1..N only") {
  const std::string d = wn::test::temp_dir("metrics");
  MetricsLog log(d + "/sub/metrics.csv");  // the folder is missing: writes fail
  CHECK_FALSE(log.append("1,a"));
  CHECK_FALSE(log.append("2,b"));
  CHECK(log.pending() == 2);
  fs::create_directories(d + "/sub");
  CHECK(log.append("3,c"));
  CHECK(log.pending() == 0);
  CHECK(read_bytes(d + "/sub/metrics.csv") == "1,a\n2,b\n3,c\n");
  // A resume drops torn, repeated and later rows.
  const std::string data = make_data(d);
  {
    Trainer t(tiny(data, d + "/run"), false);
    quiet(t);
    CHECK(t.run());
  }
  std::string m = read_bytes(d + "/run/metrics.csv");
  m += "5,0.1,0.2,0.3,0.1,\n11,0.1\n1x,torn\n12,0.1,0.2,0.3,0.1,\n";
  std::ofstream(d + "/run/metrics.csv") << m;
  TrainConfig more = load_train_config(d + "/run");
  more.iters = 12;
  {
    Trainer t(more, true);
    quiet(t);
    CHECK(t.run());
  }
  std::ifstream in(d + "/run/metrics.csv");
  std::string line;
  std::getline(in, line);
  int64_t expect = 1;
  while (std::getline(in, line)) CHECK(std::stoll(line.substr(0, line.find(','))) == expect++);
  CHECK(expect == 13);
  fs::remove_all(d);
}

TEST_CASE("SIGTERM and SIGHUP save 'last' and stop like SIGINT, naming the signal") {
  const std::string d = wn::test::temp_dir("signals");
  const std::string data = make_data(d);
  for (int sig : {SIGTERM, SIGHUP, SIGINT}) {
    TrainConfig c = tiny(data, d + "/run" + std::to_string(sig));
    c.iters = 1000;
    c.log_every = 1;
    c.test_every = 0;
    Trainer t(c, false);
    int lines = 0;
    t.log = [&](const std::string&) {
      if (++lines == 4) std::raise(sig);  // (a second one would end the process: tests/test_reliability.cpp)
    };
    CHECK_FALSE(t.run());
    CHECK(t.interrupted_by() == sig);
    nn::TensorFile f = nn::load_safetensors(c.out + "/checkpoints/last.safetensors");
    CHECK(f.metadata.at("iteration") == "4");
  }
  fs::remove_all(d);
}

TEST_CASE("divergence: a loss above the bound or an infinite weight stops the run and says which checkpoints exist") {
  const std::string d = wn::test::temp_dir("diverge");
  const std::string data = make_data(d);
  TrainConfig c = tiny(data, d + "/run");
  c.lr = 1e5;
  c.test_every = 0;
  c.iters = 50;
  Trainer t(c, false);
  quiet(t);
  CHECK_THROWS_WITH_AS(t.run(), doctest::Contains((d + "/run/checkpoints: none").c_str()), DivergedError);
  TrainConfig ok = tiny(data, d + "/run2");
  {
    Trainer a(ok, false);
    quiet(a);
    CHECK(a.run());
  }
  TrainConfig more = load_train_config(d + "/run2");
  more.iters = 20;
  Trainer b(more, true);
  quiet(b);
  Tensor w = b.gan().D->named_parameters()[0].second;
  w.data<float>()[0] = INFINITY;
  CHECK_THROWS_WITH_AS(b.run(), doctest::Contains("training diverged at iteration 11"), DivergedError);
  CHECK_THROWS_WITH_AS(b.run(), doctest::Contains("best and last, last saved at iteration 10"), DivergedError);
  CHECK_THROWS_WITH_AS(b.run(), doctest::Contains("D real loss"), DivergedError);
  fs::remove_all(d);
}

TEST_CASE("out-of-range options, empty work and an empty --out are refused with short messages") {
  const std::string d = wn::test::temp_dir("opts");
  const std::string data = make_data(d);
  for (auto [args, expect] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"train", "--batch", "0"}, "--batch: must be >= 1 (got 0)"},
           {{"train", "--lr", "-1"}, "--lr: must be a finite number > 0"},
           {{"train", "--lr", "inf"}, "--lr: must be a finite number > 0"},
           {{"train", "--out", ""}, "--out: must not be empty"},
           {{"train", "--final-n", "0"}, "--final-n: must be >= 1"},
           {{"train", "--iters", "-3"}, "--iters: must be >= 0"},
           {{"train", "--nf", "100000000"}, "--nf: must be <= 8192"},
           {{"train", "--channels", "5"}, "--channels: must be <= 4"},
           {{"summary", "--channels", "0"}, "--channels: must be >= 1"},
           {{"train", "--image-size", "16x0"}, "--image-size"},
           {{"train", "--image-size", "-4"}, "--image-size '-4'"},
           {{"study", "--seeds", "0"}, "--seeds: must be >= 1"},
           {{"eval", d, "--n", "0"}, "--n: must be >= 1"},
           {{"sample", "--checkpoint", "x", "--out", "g.png", "--n", "0"}, "--n: must be >= 1"}}) {
    const std::string e = cli(args);
    CHECK_MESSAGE(e.find(expect) != std::string::npos, "got: " << e);
  }
  // An empty batch through a convolution is an error, not a division by zero.
  CHECK_THROWS_WITH(conv2d(Tensor::zeros({0, 1, 4, 4}), Tensor::zeros({2, 1, 3, 3}), Tensor(), 1, 1),
                    doctest::Contains("empty batch"));
  fs::remove_all(d);
}

TEST_CASE("the program: an unknown command suggests the nearest, --version, help shows defaults") {
  REQUIRE_MESSAGE(fs::exists(WNGAN_BIN), "the wngan program is not built: " << WNGAN_BIN);
  auto run = [](const std::string& args) {
    const std::string out = wn::test::temp_dir("prog") + "/out.txt";
    const int rc = std::system((std::string(WNGAN_BIN) + " " + args + " > " + out + " 2>&1").c_str());
    return std::make_pair(WEXITSTATUS(rc), read_bytes(out));
  };
  auto [rc1, o1] = run("trian");
  CHECK(rc1 == 2);
  CHECK(o1.find("unknown command 'trian' (did you mean 'train'?)") != std::string::npos);
  auto [rc2, o2] = run("--version");
  CHECK(rc2 == 0);
  CHECK(o2.find("wngan 0.") != std::string::npos);
  auto [rc3, o3] = run("help train");
  CHECK(rc3 == 0);
  CHECK(o3.find("--batch INT:1 to 65536=32") != std::string::npos);
  auto [rc4, o4] = run("train --batch 0");
  CHECK(rc4 != 0);
  CHECK(o4.find("--batch: must be >= 1 (got 0)") != std::string::npos);
  auto [rc5, o5] = run("sample --checkpoint /nonexistent --out grid.bmp");
  CHECK(rc5 == 2);  // a bad value: a usage error
  CHECK(o5.find("a grid is written as .png, .jpg or .jpeg") != std::string::npos);
}

TEST_CASE("every numeric option of train and study refuses zero-or-negative, absurd and non-numeric values by rule") {
  struct Opt {
    const char* cmd;
    const char* name;
    const char* bad;  // a value below its range
  };
  const std::vector<Opt> opts = {
      {"train", "--batch", "0"},        {"train", "--lr", "0"},          {"train", "--rms-eps", "0"},
      {"train", "--iters", "-1"},       {"train", "--final-test", "0"},  {"train", "--sample-every", "-1"},
      {"train", "--test-every", "-1"},  {"train", "--test-steps", "-1"}, {"train", "--save-every", "-1"},
      {"train", "--log-every", "0"},    {"train", "--threads", "-1"},    {"train", "--final-n", "0"},
      {"train", "--final-steps", "-1"}, {"train", "--nf", "0"},          {"train", "--code", "0"},
      {"train", "--nlayer", "-1"},      {"train", "--blocks", "0"},      {"train", "--channels", "-1"},
      {"train", "--max-image-pixels", "0"}, {"study", "--seeds", "0"},   {"study", "--batch", "0"},
      {"study", "--iters", "-1"},       {"study", "--final-n", "0"},     {"study", "--running-test", "-1"},
      {"study", "--lr", "-1"},          {"study", "--test-every", "-1"}};
  int cases = 0;
  for (const Opt& o : opts)
    for (const std::string& v : {std::string(o.bad), std::string("1e300"), std::string("abc"), std::string("")}) {
      const std::string e = cli({o.cmd, o.name, v});
      INFO(o.cmd << " " << o.name << " '" << v << "': " << e);
      CHECK(e.find(o.name) != std::string::npos);  // the message names the option
      CHECK(e.size() < 200);                        // and is short: no 309-digit range
      ++cases;
    }
  MESSAGE(cases << " bad option values");
}
