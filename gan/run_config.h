// A run's configuration files: config.json (the TrainConfig) and the model description
// every checkpoint carries, written as JSON and read back with every field checked (a
// whole number that is a whole number in range, a size that is not absurd), so that a
// damaged or hand-edited file gives an error naming the file and the field, never a
// crash or a model of 11 GB.
#pragma once
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gan/models.h"
#include "gan/trainer.h"

namespace wn::gan {

// A run or model description that cannot be used; the message names the field.
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

nlohmann::json model_to_json(const ModelConfig& m);
// The model description back; throws ConfigError (a wrong version, a missing or
// malformed field, a value out of range, a model too large to build).
ModelConfig model_from_json(const nlohmann::json& j);
nlohmann::json train_to_json(const TrainConfig& c);
// Why a checkpoint (its metadata) was not saved by the run `run` (the settings a resume
// keeps: seed, data, schedule, tests; and the split, by fingerprint, when recorded), e.g.
// "'seed' = 7 there, 1 in the run"; empty when it may be the run's own.
std::string foreign_checkpoint(const std::map<std::string, std::string>& meta, const TrainConfig& run,
                               const std::string& split_fingerprint);
// Checks a model description's values and its size (at most kMaxModelParameters,
// estimated before anything is allocated); throws ConfigError naming the field.
void validate_model(const ModelConfig& m);
constexpr double kMaxModelParameters = 2e9;
// A whole number written as text (checkpoint metadata) in [lo, hi]; what names it.
int64_t parse_int(const std::string& text, const std::string& what, int64_t lo, int64_t hi);
// "a,b,,c" -> {"a", "b", "c"} (empty items dropped: a list of names or sizes), or with
// keep_empty {"a", "b", "", "c"} (the cells of a CSV row).
std::vector<std::string> split_list(const std::string& s, char sep = ',', bool keep_empty = false);

}  // namespace wn::gan
