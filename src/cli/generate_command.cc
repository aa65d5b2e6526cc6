#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "core/thread_pool.h"
#include "serve/generator.h"

namespace sc::cli {

CLI::App* add_generate_command(CLI::App& root, CommandRunner* runner) {
  struct Flags {
    std::string checkpoint, prompt;
    SamplingOptions sampling;
    size_t threads = 0;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* sub = root.add_subcommand("generate", "Continue a prompt with a trained model, streaming tokens");
  sub->add_option("--checkpoint", f->checkpoint, "A run directory, its checkpoints/ or one step_NNNNNNNN/")->required();
  sub->add_option("--prompt", f->prompt, "Text to continue")->required();
  sub->add_option("--max-tokens", f->sampling.max_tokens, "Tokens to generate at most")->capture_default_str();
  sub->add_option("--temperature", f->sampling.temperature, "Sampling temperature; 0 greedy")->capture_default_str();
  sub->add_option("--top-p", f->sampling.top_p, "Nucleus sampling mass; 1 off")->capture_default_str();
  sub->add_option("--top-k", f->sampling.top_k, "Sample among the k likeliest; 0 off")->capture_default_str();
  sub->add_option("--seed", f->sampling.seed, "Sampling seed")->capture_default_str();
  sub->add_option("--threads", f->threads, "Threads; 0 all cores")->capture_default_str();
  *runner = [f]() -> Status {
    SC_ASSIGN_OR_RETURN(auto generator, Generator::load(f->checkpoint, f->threads ? f->threads : default_thread_count()));
    std::fprintf(stderr, "[%s]\n", generator->checkpoint().c_str());
    std::fputs(f->prompt.c_str(), stdout);
    std::fflush(stdout);
    SC_ASSIGN_OR_RETURN(auto ids, generator->generate(f->prompt, f->sampling, [](uint32_t, const std::string& text) {
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
