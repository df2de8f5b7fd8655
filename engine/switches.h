// wngan's environment switches in one table: their names, the values each accepts and
// what they do. The program checks every switch that is set once, at start
// (check_switches), so a bad value is an error naming the variable before any work, never
// a failure deep inside a run (or inside an error handler).
#pragma once
#include <stdexcept>
#include <string>
#include <vector>

namespace wn {

struct Switch {
  std::string name, values, effect;
};

// A switch set to a value it does not accept (a usage error: exit code 2).
struct SwitchError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Every switch, in the order docs/cli.md lists them.
const std::vector<Switch>& switches();
// Checks the value of every switch that is set; throws SwitchError naming the first bad one.
void check_switches();
// "NAME=value" for each switch that is set (for --version and reports).
std::vector<std::string> switches_set();

}  // namespace wn
