// Gradient checks of every nn module with respect to its input and every parameter
// (float64), as named cases for the tests and `wngan gradcheck`.
#pragma once
#include <vector>

#include "engine/gradcheck_suite.h"

namespace wn::nn {

std::vector<GradcheckCase> nn_gradcheck_cases();

}  // namespace wn::nn
