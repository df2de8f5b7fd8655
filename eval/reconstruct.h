// Test-set reconstruction (docs/paper.md section 5): for each image x find z* minimising
// ||G(z) - x||^2 / (C H W) by RMSProp on z from z = 0, G frozen (no parameter
// gradients at all) and in evaluation mode. Each image has its own objective and its
// own RMSProp state, so its result does not depend on the rest of its batch.
#pragma once
#include <functional>
#include <vector>

#include "engine/tensor.h"
#include "nn/module.h"
#include "nn/optim.h"

namespace wn::eval {

struct ReconstructOptions {
  int64_t steps = 50;     // RMSProp steps per image
  double lr = 0.01, alpha = nn::kPaperRMSPropAlpha, eps = nn::kPaperRMSPropEps;
  int64_t batch = 100;    // images per batch (does not change the result)
};

struct Reconstruction {
  double mean_loss = 0;           // mean over images of the per-image loss
  std::vector<double> losses;     // per image, ||G(z*) - x||^2 / (C H W)
  Tensor z;                       // (N, code) optimised codes
  Tensor images;                  // (N, C, H, W) G(z*)
};

// Reconstructs images (N, C, H, W) in [0, 1] with generator G taking codes of length
// `code`. G's mode and parameters' requires_grad are restored afterwards.
// `progress`, if given, is called after each batch with the number of images done.
Reconstruction reconstruct(nn::Module& G, int64_t code, const Tensor& images, const ReconstructOptions& opt = {},
                           const std::function<void(int64_t)>& progress = nullptr);

}  // namespace wn::eval
