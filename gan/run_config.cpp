#include "gan/run_config.h"

#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include <fmt/format.h>

#include "nn/checkpoint.h"

namespace wn::gan {

using nlohmann::json;

namespace {

constexpr int64_t kBig = int64_t(1) << 40;  // iterations, intervals: any real run stays far below

// j[key]; nullptr when it is absent and has a default, an error when it is absent without.
const json* field(const json& j, const char* key, bool has_default) {
  if (j.contains(key)) return &j.at(key);
  if (has_default) return nullptr;
  throw ConfigError(fmt::format("'{}' is missing", key));
}

// j[key] as a whole number in [lo, hi] (or def when absent and a default is given).
int64_t get_int(const json& j, const char* key, int64_t lo, int64_t hi, const int64_t* def = nullptr) {
  const json* f = field(j, key, def != nullptr);
  if (!f) return *def;
  const json& v = *f;
  if (!v.is_number_integer()) throw ConfigError(fmt::format("'{}' is {}, not a whole number", key, v.dump()));
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
    throw ConfigError(fmt::format("'{}' = {} is out of range [{}, {}]", key, v.dump(), lo, hi));
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi) throw ConfigError(fmt::format("'{}' = {} is out of range [{}, {}]", key, x, lo, hi));
  return x;
}

int64_t get_int_or(const json& j, const char* key, int64_t lo, int64_t hi, int64_t def) {
  return get_int(j, key, lo, hi, &def);
}

// j[key] as a finite number in (lo, hi].
double get_num(const json& j, const char* key, double lo, double hi, const double* def = nullptr) {
  const json* f = field(j, key, def != nullptr);
  if (!f) return *def;
  const json& v = *f;
  if (!v.is_number()) throw ConfigError(fmt::format("'{}' is {}, not a number", key, v.dump()));
  const double x = v.get<double>();
  if (!std::isfinite(x) || !(x > lo) || x > hi)
    throw ConfigError(fmt::format("'{}' = {} is out of range ({}, {}]", key, x, lo, hi));
  return x;
}

std::string get_str(const json& j, const char* key, const char* def = nullptr) {
  const json* f = field(j, key, def != nullptr);
  if (!f) return def;
  if (!f->is_string()) throw ConfigError(fmt::format("'{}' is {}, not a string", key, f->dump()));
  return f->get<std::string>();
}

// j[key] as a choice that parse (parse_loss, ...) reads, its error naming the key.
template <class Parse>
auto get_choice(const json& j, const char* key, Parse parse, const char* def = nullptr) {
  const std::string s = get_str(j, key, def);
  try {
    return parse(s);
  } catch (const std::invalid_argument& e) {
    throw ConfigError(fmt::format("'{}': {}", key, e.what()));
  }
}

}  // namespace

Arch parse_arch(const std::string& s) {
  if (s == "dcgan") return Arch::DCGAN;
  if (s == "resnet") return Arch::ResNet;
  throw std::invalid_argument(fmt::format("unknown architecture '{}' (expected dcgan or resnet)", s));
}

const char* arch_name(Arch arch) { return arch == Arch::ResNet ? "resnet" : "dcgan"; }

json model_to_json(const ModelConfig& m) {
  return {{"arch", arch_name(m.arch)},     {"norm", norm_name(m.norm)}, {"channels", m.channels}, {"height", m.height},
          {"width", m.width},   {"nf", m.nf},                {"code", m.code},         {"nlayer", m.nlayer},
          {"features", m.features}, {"blocks", m.blocks}, {"version", kModelVersion}};
}

void validate_model(const ModelConfig& m) {
  const Arch arch = m.arch;
  auto range = [](const char* what, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi) throw ConfigError(fmt::format("{} = {} is out of range [{}, {}]", what, v, lo, hi));
  };
  range("channels", m.channels, 1, 4);
  range("height", m.height, 0, 8192);
  range("width", m.width, 0, 8192);
  range("nf", m.nf, 1, 8192);
  range("code", m.code, 1, 1 << 16);
  range("nlayer", m.nlayer, 0, 16);
  range("blocks", m.blocks, 1, 64);
  if (m.features.size() > 12) throw ConfigError(fmt::format("{} ResNet levels (at most 12)", m.features.size()));
  for (int64_t f : m.features) range("a ResNet level's features", f, 1, 8192);
  // The parameter count, roughly, before anything is allocated.
  const double h = double(m.height), w = double(m.width), code = double(m.code);
  double params = 0;
  if (arch == Arch::DCGAN) {
    const int64_t n = m.nlayer > 0 ? m.nlayer : dcgan_layers(m.height, m.width);
    double f = double(m.nf), in = double(m.channels);
    for (int64_t i = 0; i < n; ++i, in = f, f *= 2) params += 2 * 16 * in * f;  // D's conv and G's mirror
    params += code * (f / 2) * std::max(1.0, h * w / std::pow(4.0, double(n)));
  } else {
    const std::vector<int64_t> f = m.features.empty() ? std::vector<int64_t>{64, 128, 256, 384, 512} : m.features;
    double in = double(m.channels);
    for (int64_t x : f) {
      params += 2 * double(m.blocks) * (16 + 9 * 3) * in * double(x);
      in = double(x);
    }
    params += code * in * std::max(1.0, h * w / std::pow(4.0, double(f.size())));
  }
  if (params > kMaxModelParameters)
    throw ConfigError(fmt::format("the model would have about {:.3g} parameters (at most {:.3g}): {}", params,
                                  kMaxModelParameters, m.describe()));
}

ModelConfig model_from_json(const json& j) {
  if (!j.is_object()) throw ConfigError("the model description is not a JSON object");
  const int64_t one = 1;
  const int64_t version = get_int(j, "version", 0, kBig, &one);
  if (version != kModelVersion)
    throw ConfigError(fmt::format(
        "the model was made by a wngan whose networks differ (model version {}, this wngan builds version {}: "
        "the authors' initialisation, D input and ResNet blocks); train it again",
        version, kModelVersion));
  ModelConfig m;
  try {
    m.arch = parse_arch(get_str(j, "arch"));
  } catch (const std::invalid_argument&) {
    throw ConfigError(fmt::format("architecture '{}' (expected dcgan or resnet)", get_str(j, "arch")));
  }
  try {
    m.norm = parse_norm(get_str(j, "norm"));
  } catch (const std::invalid_argument& e) {
    throw ConfigError(e.what());
  }
  m.channels = get_int(j, "channels", 1, 4);
  m.height = get_int(j, "height", 2, 8192);
  m.width = get_int(j, "width", 2, 8192);
  m.nf = get_int(j, "nf", 1, 8192);
  m.code = get_int(j, "code", 1, 1 << 16);
  m.nlayer = get_int_or(j, "nlayer", 0, 16, 0);
  m.blocks = get_int_or(j, "blocks", 1, 64, 2);
  if (j.contains("features")) {
    if (!j.at("features").is_array()) throw ConfigError("'features' is not an array");
    for (size_t i = 0; i < j.at("features").size(); ++i) {
      const json& v = j.at("features")[i];
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 8192)
        throw ConfigError(fmt::format("'features'[{}] is {}, not a whole number in [1, 8192]", i, v.dump()));
      m.features.push_back(v.get<int64_t>());
    }
  }
  validate_model(m);
  return m;
}

json train_to_json(const TrainConfig& c) {
  json j = {{"model", model_to_json(c.model)}, {"data", c.data},         {"batch", c.batch},
          {"crop", {c.crop_h, c.crop_w}},   {"stretch", c.stretch},
          {"lr", c.lr},                      {"iters", c.iters},       {"loss", loss_name(c.loss)},
          {"protocol", protocol_name(c.protocol)}, {"rms_eps", c.rms_eps},
          {"seed", c.seed},                  {"sample_every", c.sample_every}, {"test_every", c.test_every},
          {"save_every", c.save_every},      {"log_every", c.log_every},       {"final_test", c.final_test},
          {"running_test", c.running_test},  {"samples", c.samples},         {"select_on", c.select_on},
          {"test_steps", c.test_steps}};
  // Only when on: a run without a trace stores (and checkpoints) exactly what it did before.
  if (c.trace_grads > 0) j["trace_grads"] = c.trace_grads;
  if (c.sync_bn) j["sync_bn"] = true;  // likewise
  return j;
}

std::string foreign_checkpoint(const std::map<std::string, std::string>& meta, const TrainConfig& run,
                               const std::string& split_fingerprint) {
  if (auto it = meta.find("train"); it != meta.end()) {
    const json saved = json::parse(it->second, nullptr, false);
    const json own = train_to_json(run);
    if (saved.is_object())
      for (const char* k : {"seed", "data", "batch", "lr", "loss", "protocol", "rms_eps", "crop", "stretch",
                            "final_test", "running_test", "select_on", "test_every", "test_steps"})
        if (saved.contains(k) && own.contains(k) && saved[k] != own[k])
          return fmt::format("'{}' = {} there, {} in the run", k, saved[k].dump(), own[k].dump());
  }
  if (auto it = meta.find("split"); it != meta.end() && !split_fingerprint.empty() && it->second != split_fingerprint)
    return fmt::format("its split (fingerprint {}) is not the run's ({})", it->second, split_fingerprint);
  return "";
}

TrainConfig load_train_config(const std::string& run_dir) {
  const std::string path = RunDir(run_dir).config();
  if (nn::file_kind(path) != nn::FileKind::Regular)
    throw std::runtime_error(fmt::format("{}: cannot open (is {} a run folder?)", path, run_dir));
  std::ifstream f(path);
  if (!f) throw std::runtime_error(fmt::format("{}: cannot open (is {} a run folder?)", path, run_dir));
  json j;
  try {
    f >> j;
  } catch (const json::exception& e) {
    throw std::runtime_error(fmt::format("{}: not valid JSON ({})", path, e.what()));
  }
  try {
    if (!j.is_object()) throw ConfigError("not a JSON object");
    if (!j.contains("model")) throw ConfigError("'model' is missing");
    TrainConfig c;
    try {
      c.model = model_from_json(j.at("model"));
    } catch (const ConfigError& e) {
      throw ConfigError(fmt::format("model: {}", e.what()));
    }
    c.data = get_str(j, "data");
    if (j.contains("crop")) {
      const json& crop = j.at("crop");
      if (!crop.is_array() || crop.size() != 2 || !crop[0].is_number_integer() || !crop[1].is_number_integer() ||
          crop[0].get<int64_t>() < 0 || crop[1].get<int64_t>() < 0 || crop[0].get<int64_t>() > 100000 ||
          crop[1].get<int64_t>() > 100000)
        throw ConfigError(fmt::format("'crop' is {}, not two sizes [height, width] >= 0", crop.dump()));
      c.crop_h = crop[0].get<int64_t>();
      c.crop_w = crop[1].get<int64_t>();
    }
    if (j.contains("stretch") && !j.at("stretch").is_boolean()) throw ConfigError("'stretch' is not true or false");
    c.stretch = j.value("stretch", false);
    c.batch = get_int(j, "batch", 1, 1 << 20);
    c.lr = get_num(j, "lr", 0, 1e6);
    c.iters = get_int(j, "iters", 0, kBig);
    c.loss = get_choice(j, "loss", parse_loss);
    c.protocol = get_choice(j, "protocol", parse_protocol, "alternating");
    const double eps = nn::kPaperRMSPropEps;
    c.rms_eps = get_num(j, "rms_eps", 0, 1, &eps);
    c.seed = uint64_t(get_int(j, "seed", 0, std::numeric_limits<int64_t>::max()));
    c.sample_every = get_int(j, "sample_every", 0, kBig);
    c.trace_grads = get_int_or(j, "trace_grads", 0, kBig, 0);
    c.test_every = get_int(j, "test_every", 0, kBig);
    c.save_every = get_int(j, "save_every", 0, kBig);
    c.log_every = get_int_or(j, "log_every", 1, kBig, 100);
    c.final_test = get_int(j, "final_test", 1, kBig);
    c.running_test = get_int(j, "running_test", 0, kBig);
    c.samples = get_int_or(j, "samples", 1, 4096, 64);
    c.select_on = get_str(j, "select_on", "test");
    if (j.contains("sync_bn") && !j.at("sync_bn").is_boolean()) throw ConfigError("'sync_bn' is not true or false");
    c.sync_bn = j.value("sync_bn", false);
    c.test_steps = get_int_or(j, "test_steps", 0, int64_t(1e9), 50);
    c.out = run_dir;
    return c;
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("{}: {}", path, e.what()));
  } catch (const json::exception& e) {
    throw ConfigError(fmt::format("{}: malformed run configuration ({})", path, e.what()));
  }
}

int64_t parse_int(const std::string& text, const std::string& what, int64_t lo, int64_t hi) {
  int64_t v = 0;
  const char *b = text.data(), *e = text.data() + text.size();
  const auto r = std::from_chars(b, e, v);
  if (r.ec != std::errc() || r.ptr != e || text.empty())
    throw ConfigError(fmt::format("{} is '{}', not a whole number", what, text));
  if (v < lo || v > hi) throw ConfigError(fmt::format("{} = {} is out of range [{}, {}]", what, v, lo, hi));
  return v;
}

std::vector<std::string> split_list(const std::string& s, char sep, bool keep_empty) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string::npos) end = s.size();
    if (keep_empty || end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace wn::gan
