// `wngan gradcheck`: --op, --family, --tol, --second-order and --json, each error, and the
// worst element printed on a failure.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "app_helpers.h"

using nlohmann::json;
using wn::test::cli_error;
using wn::test::temp_dir;

namespace {

json read_json(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "no file " << path);
  std::stringstream s;
  s << in.rdbuf();
  return json::parse(s.str());
}

}  // namespace

TEST_CASE("wngan gradcheck --op --json: one op's cases, each with its worst element, in a JSON file") {
  const std::string d = temp_dir("gradcheck_json");
  CHECK(cli_error({"gradcheck", "--op", "prelu", "--json", d + "/r.json"}) == "");
  const json j = read_json(d + "/r.json");
  REQUIRE(j["cases"].size() == 4);  // the four prelu cases of engine/gradcheck_suite.cpp
  CHECK(j["passed"] == 4);
  CHECK(j["failed"] == 0);
  for (const json& c : j["cases"]) {
    CHECK(c["family"] == "activation");
    CHECK(c["name"] == "prelu");
    CHECK(c["passed"] == true);
    CHECK(c["tolerance"] == 1e-6);
    CHECK(c["max_rel_error"].get<double>() < 1e-6);
    const json& w = c["worst"];
    CHECK(w["abs_error"].get<double>() ==
          doctest::Approx(std::fabs(w["analytic"].get<double>() - w["numeric"].get<double>())));
    CHECK(c["worst_text"].get<std::string>().find(w["name"].get<std::string>() + " element ") == 0);
  }
  CHECK(j["cases"][0]["shape"] == "(2, 3, 4, 5) (3,)");
  // The worst element's multi-index has the rank of its tensor: x (2, 3, 4, 5) or the slope (3).
  const json& w0 = j["cases"][0]["worst"];
  CHECK(w0["index"].size() == (w0["input"] == 0 ? 4u : 1u));
  CHECK(w0["name"] == (w0["input"] == 0 ? "input 0" : "input 1"));
  std::filesystem::remove_all(d);
}

TEST_CASE("wngan gradcheck --tol: a tolerance no case can meet fails it, in the JSON and the exit") {
  const std::string d = temp_dir("gradcheck_tol");
  const std::string e = cli_error({"gradcheck", "--op", "sigmoid", "--tol", "1e-30", "--json", d + "/r.json"});
  CHECK(e == "1 gradient check(s) failed");
  const json j = read_json(d + "/r.json");  // written before the failure is reported
  REQUIRE(j["cases"].size() == 1);
  const json& c = j["cases"][0];
  CHECK(c["passed"] == false);
  CHECK(c["tolerance"] == 1e-30);
  CHECK(c["worst"]["name"] == "input 0");
  CHECK(c["worst"]["flat_index"].get<int64_t>() >= 0);
  CHECK(c["worst"]["flat_index"].get<int64_t>() < 24);
  CHECK(c["worst"]["index"].size() == 3);  // sigmoid's case is (2, 3, 4)
  // The same case with a loose tolerance passes.
  CHECK(cli_error({"gradcheck", "--op", "sigmoid", "--tol", "1e-3"}) == "");
  std::filesystem::remove_all(d);
}

TEST_CASE("wngan gradcheck: unknown families and ops list the valid ones; bad --tol and --json are refused") {
  CHECK(cli_error({"gradcheck", "--family", "convv"}) ==
        "unknown gradient-check family 'convv'; the families are: activation, batch_norm, conv, elementwise, "
        "linear, loss, nn, pool, reduce, shape, weight_norm");
  const std::string op = cli_error({"gradcheck", "--op", "conv3d"});
  CHECK(op.find("unknown op 'conv3d'; the ops are: ") == 0);
  for (const char* name : {"conv2d", "sigmoid", "Linear", "WNConv2d", "batch_norm"})
    CHECK_MESSAGE(op.find(name) != std::string::npos, name);
  CHECK(cli_error({"gradcheck", "--family", "conv", "--op", "sigmoid"}) ==
        "unknown op 'sigmoid' in family conv; the ops of conv are: conv2d, conv_transpose2d");
  CHECK(cli_error({"gradcheck", "--op", "sigmoid", "--tol", "0"}).find("--tol: must be a finite number > 0") !=
        std::string::npos);
  CHECK(cli_error({"gradcheck", "--op", "sigmoid", "--tol", "x"}).find("'x' is not a number") != std::string::npos);
  // A missing folder on the way is created when the file is written; a file on the way cannot be one.
  const std::string file = wn::test::temp_dir("gradcheck_cli_json") + "/plain";
  std::ofstream(file) << "x";
  CHECK(cli_error({"gradcheck", "--op", "sigmoid", "--json", file + "/r.json"}) ==
        "--json: cannot write '" + file + "/r.json': '" + file + "' is not a folder");
  // A folder is refused before any check runs.
  const std::string dir_err = cli_error({"gradcheck", "--json", std::filesystem::temp_directory_path().string()});
  CHECK(dir_err.find("--json") == 0);
  CHECK(dir_err.find("is a folder") != std::string::npos);
}

TEST_CASE("wngan gradcheck --second-order: checked where the ops have a double backward, n/a elsewhere") {
  const std::string d = temp_dir("gradcheck_second");
  CHECK(cli_error({"gradcheck", "--family", "reduce", "--second-order", "--json", d + "/r.json"}) == "");
  json j = read_json(d + "/r.json");
  CHECK(j["second_order"]["passed"] == 6);
  CHECK(j["second_order"]["not_supported"] == 0);
  for (const json& c : j["cases"]) {
    CHECK(c["second_order"]["passed"] == true);
    CHECK(c["second_order"]["worst"]["name"].is_string());  // an input or "upstream"
  }
  // conv2d has no double backward: reported, not failed.
  CHECK(cli_error({"gradcheck", "--op", "conv2d", "--second-order", "--json", d + "/c.json"}) == "");
  j = read_json(d + "/c.json");
  CHECK(j["second_order"]["not_supported"] == 9);
  CHECK(j["cases"][0]["second_order"]["supported"] == false);
  CHECK(j["cases"][0]["second_order"]["unsupported_op"] == "conv2d");
  CHECK(j["cases"][0]["second_order"]["passed"] == false);
  std::filesystem::remove_all(d);
}

TEST_CASE("the wngan gradcheck program prints the worst element of a failed case and exits 1") {
  REQUIRE_MESSAGE(std::filesystem::exists(WNGAN_BIN), "the wngan program is not built: " << WNGAN_BIN);
  const std::string out = temp_dir("gradcheck_prog") + "/out.txt";
  const int rc = std::system((std::string(WNGAN_BIN) + " gradcheck --op sigmoid --tol 1e-30 > " + out + " 2>&1").c_str());
  CHECK(WEXITSTATUS(rc) == 1);
  std::ifstream in(out);
  std::stringstream s;
  s << in.rdbuf();
  const std::string text = s.str();
  CHECK(text.find("FAIL") != std::string::npos);
  CHECK(text.find("    worst: input 0 element ") != std::string::npos);
  CHECK(text.find("analytic ") != std::string::npos);
  CHECK(text.find("0 passed, 1 failed") != std::string::npos);
}
