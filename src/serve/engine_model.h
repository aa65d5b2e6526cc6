// How a loaded checkpoint becomes what the engine decodes with, and when one
// may replace another in a running engine. The server's first load and every
// `--follow` switch build it here, and only here, so that both serve a
// checkpoint the same way (its weights in the format of `--weights`).
#pragma once

#include <memory>

#include "core/status.h"
#include "serve/engine.h"
#include "serve/loaded_model.h"

namespace sc {

// An EngineModel over `model`'s weights and tokenizer, for an engine of
// `shape` (Engine::inference_shape()). It keeps `model` alive. May run on
// any thread: a switch builds it while the engine goes on serving.
Result<std::unique_ptr<EngineModel>> make_engine_model(std::shared_ptr<const LoadedModel> model,
                                                       const InferenceShape& shape);

// Why `next` cannot replace `served` in a running engine, or OK: its model
// must have the same config (the KV caches and buffers were sized for the
// first) and its tokenizer the same piece for every id (queued prompts were
// encoded with the served one's).
Status check_can_replace(const LoadedModel& served, const LoadedModel& next);

}  // namespace sc
