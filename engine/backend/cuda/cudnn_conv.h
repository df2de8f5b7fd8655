// Convolutions through cuDNN, loaded at run time (dlopen), so that a machine without
// cuDNN still runs: each call returns false when cuDNN is absent or declines the
// geometry, and the CUDA backend then runs its own im2col kernels.
#pragma once
#include <string>

#include "engine/backend/backend.h"

namespace wn {

class CudaBackend;

// y = conv(x, w) (no bias); false: not done, use the own kernels.
bool cudnn_conv_forward(CudaBackend& be, const ConvGeom& g, const Tensor& x, const Tensor& w, Tensor& y);
// dx from dy and w; false: not done.
bool cudnn_conv_backward_data(CudaBackend& be, const ConvGeom& g, const Tensor& dy, const Tensor& w, Tensor& dx);
// dw from x and dy; false: not done.
bool cudnn_conv_backward_weight(CudaBackend& be, const ConvGeom& g, const Tensor& x, const Tensor& dy, Tensor& dw);
// Whether WNGAN_CUDNN asks for cuDNN (set, and not 0: the own kernels are the default, being
// faster at DCGAN sizes on an H200); throws on a value it does not know.
bool cudnn_conv_wanted();
// "cuDNN 9.19.0 (heuristic choice, ...): 12 of 12 geometry-directions so far", or why
// cuDNN is not in use.
std::string cudnn_conv_status();

}  // namespace wn
