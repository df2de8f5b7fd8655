// docs/teaching.md checked against what its commands print: the commands in its `sh`
// blocks are run again (its runs/teach folder mapped to a temporary one), and every number
// the text quotes with a check comment after it, `0.107<!-- = SOURCE STEP LAYER QUANTITY
// AT CMP -->`, is compared with their output:
//   SOURCE   inspect:VARIANT (rows of the inspect command's --csv) or trace:MODEL (the
//            grad_trace.csv of the study's run MODEL_seed1)
//   LAYER    a layer name, or a prefix ending in '*'
//   AT       a traced iteration, 'last' or 'all' (trace); '-' (inspect)
//   CMP      ~P%: the number is the value within P percent; <, >: every |value| is below /
//            above the number; max>: the largest |value| is above it
// Skipped (with a message) without the Fashion-MNIST package the commands train on.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include <fmt/format.h>

#include "app_helpers.h"
#include "eval/report.h"
#include "gan/data.h"

using namespace wn;
namespace fs = std::filesystem;

namespace {

const std::string kDoc = std::string(WNGAN_SOURCE_DIR) + "/docs/teaching.md";

struct Row {
  std::string key, step, layer, quantity;  // key: the variant (inspect) or the iteration (trace)
  double value = 0;
};

std::vector<Row> read_rows(const std::string& path) {
  std::ifstream f(path);
  REQUIRE_MESSAGE(f.good(), "no output file " << path);
  std::vector<Row> rows;
  std::string line;
  std::getline(f, line);  // header
  while (std::getline(f, line)) {
    std::stringstream ss(line);
    std::string c[5];
    for (auto& s : c) std::getline(ss, s, ',');
    rows.push_back({c[0], c[1], c[2], c[3], std::stod(c[4])});
  }
  return rows;
}

// The commands of the doc's ```sh blocks: `bash setup.sh run ARGS` lines, as ARGS.
std::vector<std::vector<std::string>> commands(const std::string& doc) {
  std::vector<std::vector<std::string>> out;
  std::istringstream in(doc);
  bool in_sh = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("```", 0) == 0) {
      in_sh = !in_sh && line == "```sh";
      continue;
    }
    const std::string prefix = "bash setup.sh run ";
    if (!in_sh || line.rfind(prefix, 0) != 0) continue;
    std::istringstream words(line.substr(prefix.size()));
    std::vector<std::string> args;
    for (std::string w; words >> w;) args.push_back(w);
    out.push_back(args);
  }
  return out;
}

struct Check {
  double number;
  std::string text, source, step, layer, quantity, at, cmp;
};

std::vector<Check> checks(const std::string& doc) {
  std::vector<Check> out;
  static const std::regex re(R"(([-+]?[0-9][0-9.]*(?:[eE][-+]?[0-9]+)?)[*`]*\s*<!--\s*=\s*(.*?)\s*-->)");
  for (auto it = std::sregex_iterator(doc.begin(), doc.end(), re); it != std::sregex_iterator(); ++it) {
    Check c;
    c.text = (*it)[0];
    c.number = std::stod((*it)[1]);
    std::istringstream w((*it)[2].str());
    w >> c.source >> c.step >> c.layer >> c.quantity >> c.at >> c.cmp;
    REQUIRE_MESSAGE(!c.cmp.empty(), "malformed check in docs/teaching.md: " << c.text);
    out.push_back(c);
  }
  return out;
}

bool layer_matches(const std::string& pattern, const std::string& layer) {
  if (!pattern.empty() && pattern.back() == '*') return layer.rfind(pattern.substr(0, pattern.size() - 1), 0) == 0;
  return pattern == layer;
}

}  // namespace

TEST_CASE("docs/teaching.md: its commands run again give the numbers its text quotes") {
  // The page itself first (also without the data set): its commands and checks parse.
  const std::string doc = eval::read_text(kDoc);
  REQUIRE(!doc.empty());
  const auto cmds = commands(doc);
  REQUIRE(cmds.size() >= 3);
  const auto all = checks(doc);
  REQUIRE(all.size() >= 8);
  try {
    gan::open_dataset("fashion-mnist");
  } catch (const std::exception& e) {
    WARN_MESSAGE(false, "NOT CHECKED: the teaching page's numbers need Fashion-MNIST (" << e.what()
                                                                                    << "); `bash setup.sh test` installs it");
    return;
  }
  // runs/teach is mapped to a folder that does not exist yet, as on a fresh clone: the
  // commands must create what they write into.
  const std::string root = wn::test::temp_dir("teaching"), dir = root + "/runs/teach";
  REQUIRE(!std::filesystem::exists(root + "/runs"));
  for (auto args : cmds) {
    for (auto& a : args)
      if (a.rfind("runs/teach", 0) == 0) a = dir + a.substr(std::string("runs/teach").size());
    std::string line = WNGAN_BIN;
    for (const auto& a : args) line += " '" + a + "'";
    INFO(line);
    REQUIRE(std::system((line + " > '" + root + "/log.txt' 2>&1").c_str()) == 0);
  }
  std::map<std::string, std::vector<Row>> sources;
  for (const Check& c : all) {
    INFO(c.text);
    const auto colon = c.source.find(':');
    REQUIRE(colon != std::string::npos);
    const std::string kind = c.source.substr(0, colon), name = c.source.substr(colon + 1);
    const std::string file = kind == "inspect" ? dir + "/inspect.csv" : fmt::format("{}/study/runs/{}_seed1/grad_trace.csv", dir, name);
    if (!sources.count(file)) sources[file] = read_rows(file);
    const std::vector<Row>& rows = sources[file];
    int64_t last = 0;
    for (const Row& r : rows)
      if (kind == "trace") last = std::max<int64_t>(last, std::stoll(r.key));
    std::vector<double> values;
    for (const Row& r : rows) {
      if (r.step != c.step || r.quantity != c.quantity || !layer_matches(c.layer, r.layer)) continue;
      if (kind == "inspect" && r.key != name) continue;
      if (kind == "trace" && c.at != "all" && std::stoll(r.key) != (c.at == "last" ? last : std::stoll(c.at))) continue;
      values.push_back(r.value);
    }
    REQUIRE_MESSAGE(!values.empty(), "no rows for " << c.text);
    if (c.cmp[0] == '~') {
      REQUIRE(values.size() == 1);
      const double tol = std::stod(c.cmp.substr(1)) / 100;
      CHECK(std::fabs(c.number - values[0]) <= tol * std::fabs(values[0]));
    } else {
      double largest = 0;
      for (double v : values) {
        INFO("value " << v);
        largest = std::max(largest, std::fabs(v));
        if (c.cmp == "<") CHECK(std::fabs(v) < c.number);
        else if (c.cmp == ">") CHECK(std::fabs(v) > c.number);
        else if (c.cmp != "max>") FAIL("unknown comparison " << c.cmp);
      }
      if (c.cmp == "max>") CHECK(largest > c.number);
    }
  }
  // The pictures the page shows are checked in beside it.
  static const std::regex img(R"(!\[[^\]]*\]\(([^)]+)\))");
  int pictures = 0;
  for (auto it = std::sregex_iterator(doc.begin(), doc.end(), img); it != std::sregex_iterator(); ++it, ++pictures)
    CHECK_MESSAGE(fs::exists(fs::path(kDoc).parent_path() / (*it)[1].str()), (*it)[1].str());
  CHECK(pictures >= 3);
  fs::remove_all(dir);
}
