#include <algorithm>
#include <cstdlib>
#include <memory>
#include <optional>

#include "cli/commands.h"
#include "cli/flag_checks.h"
#include "core/thread_pool.h"
#include "run/checkpoint_store.h"
#include "serve/http_server.h"

namespace sc::cli {

// Test hook (docs/serving.md): milliseconds the engine pauses after each
// step, so a test can hold a slot busy. Read from the environment rather than
// a flag: nobody should set it by accident from the command line.
constexpr const char* kStepDelayEnvVar = "SUPERCLUSTER_SERVE_STEP_DELAY_MS";
// Test hook: milliseconds between --follow's looks for a new checkpoint
// (kFollowPollInterval otherwise), so a test sees a switch soon.
constexpr const char* kFollowPollEnvVar = "SUPERCLUSTER_SERVE_FOLLOW_POLL_MS";

namespace {
// A test hook's milliseconds; nullopt when the variable is unset.
std::optional<std::chrono::milliseconds> milliseconds_from_env(const char* name) {
  const char* value = std::getenv(name);
  if (!value) return std::nullopt;
  return std::chrono::milliseconds(std::max(0L, std::strtol(value, nullptr, 10)));
}
}  // namespace

CLI::App* add_serve_command(CLI::App& root, CommandRunner* runner) {
  struct Flags {
    std::string checkpoint, host = "127.0.0.1", api_key, weights = "fp32";
    int64_t port = 8080, slots = 4, context = 0, threads = 0, max_queue = 64;
    bool follow = false;
    CLI::Option *port_option, *slots_option, *context_option, *threads_option, *max_queue_option;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* sub =
      root.add_subcommand("serve", "Serve a trained model over an OpenAI-compatible HTTP API and a chat page");
  sub->add_option("--checkpoint", f->checkpoint, "A run directory, its checkpoints/ or one step_NNNNNNNN/")->required();
  sub->add_option("--host", f->host, "Address to listen on")->capture_default_str();
  f->port_option = sub->add_option("--port", f->port, "Port; 0 any free one (printed)")->capture_default_str();
  f->slots_option = sub->add_option("--slots", f->slots, "Requests generated at once (KV-cache slots), 1 to 256")
                        ->capture_default_str();
  f->context_option = sub->add_option("--ctx", f->context, "Positions per slot; 0 the model's max_position_embeddings")
                          ->capture_default_str();
  f->threads_option =
      sub->add_option("--threads", f->threads, "Threads of the model, at most 256; 0 all cores")->capture_default_str();
  sub->add_option("--api-key", f->api_key, "Bearer key the API requires; empty: none");
  f->max_queue_option =
      sub->add_option("--max-queue", f->max_queue, "Requests waiting for a slot, 0 to 4096; more get 503")
          ->capture_default_str();
  sub->add_option("--weights", f->weights, kWeightsFlagHelp)->capture_default_str();
  sub->add_flag("--follow", f->follow,
                "Switch to each newer checkpoint the run commits while training, between requests");
  runner->check = [f]() -> Status {
    SC_RETURN_IF_ERROR(check_integer_text<int64_t>(*f->port_option, "an integer in [0, 65535]"));
    SC_RETURN_IF_ERROR(check_integer_text<int64_t>(*f->slots_option, "an integer in [1, 256]"));
    SC_RETURN_IF_ERROR(check_integer_text<int64_t>(*f->context_option, "an integer in [0, 16777216]"));
    SC_RETURN_IF_ERROR(check_integer_text<int64_t>(*f->threads_option, "an integer in [0, 256]"));
    SC_RETURN_IF_ERROR(check_integer_text<int64_t>(*f->max_queue_option, "an integer in [0, 4096]"));
    if (f->port < 0 || f->port > 65535)
      return Status::invalid("--port must be an integer in [0, 65535] (got {})", f->port);
    if (f->slots < 1 || f->slots > 256)
      return Status::invalid("--slots must be an integer in [1, 256] (got {})", f->slots);
    if (f->context < 0 || f->context > (int64_t{1} << 24)) {
      return Status::invalid("--ctx must be an integer in [0, 16777216] (got {})", f->context);
    }
    if (f->max_queue < 0 || f->max_queue > 4096) {
      return Status::invalid("--max-queue must be an integer in [0, 4096] (got {})", f->max_queue);
    }
    SC_RETURN_IF_ERROR(weight_format_from_flag(f->weights).status());
    if (f->host.empty()) return Status::invalid("--host must be an address, e.g. 127.0.0.1");
    if (f->follow && is_one_checkpoint(f->checkpoint)) {
      return Status::invalid("--follow watches a run for new checkpoints, and --checkpoint {} is one checkpoint: give "
                             "its run directory (or the run's checkpoints/)",
                             f->checkpoint);
    }
    return threads_from_flag(f->threads, "--threads").status();
  };
  runner->run = [f]() -> Status {
    ServeOptions options;
    options.checkpoint = f->checkpoint;
    options.host = f->host;
    options.port = static_cast<int>(f->port);
    options.slots = static_cast<size_t>(f->slots);
    options.context = static_cast<size_t>(f->context);
    SC_ASSIGN_OR_RETURN(options.threads, threads_from_flag(f->threads, "--threads"));
    options.api_key = f->api_key;
    SC_ASSIGN_OR_RETURN(options.weights, weight_format_from_flag(f->weights));
    options.max_queue = static_cast<size_t>(f->max_queue);
    options.step_delay = milliseconds_from_env(kStepDelayEnvVar).value_or(options.step_delay);
    options.follow = f->follow;
    options.follow_poll_interval = milliseconds_from_env(kFollowPollEnvVar).value_or(options.follow_poll_interval);
    return serve(options);
  };
  return sub;
}

}  // namespace sc::cli
