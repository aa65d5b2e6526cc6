#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/flag_checks.h"
#include "core/thread_pool.h"
#include "serve/generator.h"

namespace sc::cli {

CLI::App* add_generate_command(CLI::App& root, CommandRunner* runner) {
  struct Flags {
    std::string checkpoint, prompt, weights = "fp32";
    SamplingOptions sampling;
    int64_t threads = 0;  // signed: "-1" is an error, not 2^64 - 1
    CLI::Option *max_tokens, *top_k, *seed, *threads_option;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* sub = root.add_subcommand("generate", "Continue a prompt with a trained model, streaming tokens");
  sub->add_option("--checkpoint", f->checkpoint, "A run directory, its checkpoints/ or one step_NNNNNNNN/")->required();
  sub->add_option("--prompt", f->prompt, "Text to continue")->required();
  f->max_tokens = sub->add_option("--max-tokens", f->sampling.max_tokens, "Tokens to generate at most")
                      ->capture_default_str();
  sub->add_option("--temperature", f->sampling.temperature, "Sampling temperature; 0 greedy, else 0.001 to 100")
      ->capture_default_str();
  sub->add_option("--top-p", f->sampling.top_p, "Nucleus sampling mass in (0, 1]; 1 off")->capture_default_str();
  f->top_k = sub->add_option("--top-k", f->sampling.top_k, "Sample among the k likeliest; 0 off")
                 ->capture_default_str();
  f->seed = sub->add_option("--seed", f->sampling.seed, "Sampling seed")->capture_default_str();
  f->threads_option = sub->add_option("--threads", f->threads, "Threads, at most 256; 0 all cores")
                          ->capture_default_str();
  sub->add_option("--weights", f->weights, kWeightsFlagHelp)->capture_default_str();
  // Every flag is checked before anything is loaded or printed.
  runner->check = [f]() -> Status {
    SC_RETURN_IF_ERROR(check_integer_text<int64_t>(*f->max_tokens, "an integer in [0, 16777216]"));
    SC_RETURN_IF_ERROR(check_integer_text<int64_t>(*f->top_k, "an integer in [0, 16777216]"));
    SC_RETURN_IF_ERROR(check_integer_text<uint64_t>(*f->seed, "an integer in [0, 18446744073709551615]"));
    SC_RETURN_IF_ERROR(check_integer_text<int64_t>(*f->threads_option, "an integer in [0, 256]"));
    SC_RETURN_IF_ERROR(f->sampling.validate());
    SC_RETURN_IF_ERROR(weight_format_from_flag(f->weights).status());
    return threads_from_flag(f->threads, "--threads").status();
  };
  runner->run = [f]() -> Status {
    SC_ASSIGN_OR_RETURN(const size_t threads, threads_from_flag(f->threads, "--threads"));
    SC_ASSIGN_OR_RETURN(const WeightFormat weights, weight_format_from_flag(f->weights));
    SC_ASSIGN_OR_RETURN(auto generator, Generator::load(f->checkpoint, threads, weights));
    SC_ASSIGN_OR_RETURN(const std::vector<uint32_t> context, generator->encode_prompt(f->prompt));
    std::fprintf(stderr, "[%s]\n", generator->checkpoint().c_str());
    std::fputs(f->prompt.c_str(), stdout);
    std::fflush(stdout);
    SC_ASSIGN_OR_RETURN(auto ids, generator->generate_from(context, f->sampling, [](uint32_t, const std::string& text) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
      return true;
    }));
    std::fputc('\n', stdout);
    return Status();
  };
  return sub;
}

}  // namespace sc::cli
