#include "data/prepare.h"

#include <chrono>
#include <ctime>
#include <filesystem>

#include "core/checksum.h"
#include "core/file_util.h"
#include "core/human_format.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/thread_pool.h"
#include "data/corpus.h"
#include "data/permutation.h"
#include "data/prepared_data.h"
#include "data/shard.h"
#include "data/staged_directory.h"
#include "data/tokenizer.h"

namespace sc {
namespace fs = std::filesystem;

namespace {

double now_s() { return seconds_since_start(); }

// SentencePiece skips training sentences longer than its limit, so long
// documents are cut at line breaks into pieces that fit.
void append_training_pieces(std::string_view doc, size_t max_bytes, std::vector<std::string>* out) {
  while (!doc.empty()) {
    size_t take = doc.size();
    if (take > max_bytes) {
      size_t cut = doc.rfind('\n', max_bytes - 1);
      take = (cut == std::string_view::npos || cut == 0) ? max_bytes : cut + 1;
      // Never cut inside a UTF-8 sequence.
      while (take > 0 && take < doc.size() && (static_cast<uint8_t>(doc[take]) & 0xC0) == 0x80) --take;
      if (take == 0) take = max_bytes;
    }
    out->emplace_back(doc.substr(0, take));
    doc.remove_prefix(take);
  }
}

// One split's shards: rolls to a new file past `shard_tokens`.
class SplitWriter {
 public:
  SplitWriter(std::string dir, std::string split, uint32_t vocab_size, uint64_t tokenizer_checksum,
              uint64_t shard_tokens)
      : dir_(std::move(dir)),
        split_(std::move(split)),
        vocab_size_(vocab_size),
        tokenizer_checksum_(tokenizer_checksum),
        shard_tokens_(shard_tokens) {}

  Status add_document(std::span<const uint32_t> tokens) {
    if (!current_) {
      std::string path = (fs::path(dir_) / shard_file_name(split_, shards_.size())).string();
      SC_ASSIGN_OR_RETURN(ShardWriter writer, ShardWriter::open(path, vocab_size_, tokenizer_checksum_));
      current_ = std::make_unique<ShardWriter>(std::move(writer));
    }
    SC_RETURN_IF_ERROR(current_->append(tokens));
    current_->count_document();
    ++documents_;
    tokens_ += tokens.size();
    if (current_->token_count() >= shard_tokens_) return close_shard();
    return Status();
  }

  Status finish() { return current_ ? close_shard() : Status(); }

  uint64_t documents() const { return documents_; }
  uint64_t tokens() const { return tokens_; }
  const nlohmann::json& shards() const { return shards_; }

 private:
  Status close_shard() {
    uint64_t count = current_->token_count();
    std::string path = current_->path();
    SC_RETURN_IF_ERROR(current_->finish());
    current_.reset();
    SC_ASSIGN_OR_RETURN(ShardReader check, ShardReader::open(path, vocab_size_));
    shards_.push_back({{"file", fs::path(path).filename().string()},
                       {"split", split_},
                       {"tokens", count},
                       {"documents", check.header().document_count},
                       {"checksum", fmt::format("{:016x}", check.header().payload_checksum)}});
    return Status();
  }

  std::string dir_, split_;
  uint32_t vocab_size_;
  uint64_t tokenizer_checksum_;
  uint64_t shard_tokens_;
  std::unique_ptr<ShardWriter> current_;
  nlohmann::json shards_ = nlohmann::json::array();
  uint64_t documents_ = 0, tokens_ = 0;
};

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

bool is_validation_document(uint64_t index, uint64_t seed, double val_fraction) {
  const double u = static_cast<double>(mix64(index ^ mix64(seed)) >> 11) * 0x1.0p-53;
  return u < val_fraction;
}

Status check_prepare_options(const PrepareOptions& options) {
  if (options.vocab_size < 300) {
    return Status::invalid("--vocab-size {} is too small: byte fallback alone needs 259 ids (256 bytes + 3 specials)",
                           options.vocab_size);
  }
  if (!(options.val_fraction >= 0.0 && options.val_fraction < 1.0)) {
    return Status::invalid("--val-fraction {} must be in [0, 1)", options.val_fraction);
  }
  if (options.shard_tokens == 0) return Status::invalid("--shard-tokens must be positive");
  if (options.num_threads > kMaxThreads) {
    return Status::invalid("--threads {} is out of range: expected 0 (all cores) to {}", options.num_threads,
                           kMaxThreads);
  }
  return Status();
}

Result<PrepareSummary> run_prepare(const PrepareOptions& options) {
  const double t_start = now_s();
  SC_RETURN_IF_ERROR(check_prepare_options(options));
  // Everything is written into `staged` and replaces the output only at the end.
  SC_ASSIGN_OR_RETURN(StagedDirectory staged, StagedDirectory::create(options.out_dir, is_prepare_output_name));
  SC_ASSIGN_OR_RETURN(CorpusListing listing, list_corpus_files(options.inputs));
  nlohmann::json skipped_report = nlohmann::json::array();
  for (const auto& skipped : listing.skipped) {
    log_debug("skipped {}: {}", skipped.path, skipped.reason);
    skipped_report.push_back({{"path", skipped.path}, {"reason", skipped.reason}});
  }
  if (!listing.skipped.empty()) {
    log_info("skipped {} entries of the input directories (listed in prepare.json), e.g. {}: {}",
             listing.skipped.size(), listing.skipped.front().path, listing.skipped.front().reason);
  }
  uint64_t total_bytes = 0;
  for (const auto& f : listing.files) total_bytes += f.size_bytes;
  log_info("{} input file(s), {}", listing.files.size(), human_bytes(static_cast<double>(total_bytes)));

  // Pass 1: validate everything and gather the tokenizer's training text.
  ProgressLine progress;
  std::vector<std::string> training_pieces;
  uint64_t sample_bytes = 0, bytes_read = 0, documents = 0;
  nlohmann::json inputs_report = nlohmann::json::array();
  for (const CorpusFile& file : listing.files) {
    uint64_t file_documents = 0;
    SC_RETURN_IF_ERROR(for_each_document(file, [&](std::string_view doc) {
      ++file_documents;
      if (sample_bytes < options.tokenizer_sample_bytes) {
        append_training_pieces(doc, 8192, &training_pieces);
        sample_bytes += doc.size();
      }
      return Status();
    }));
    documents += file_documents;
    bytes_read += file.size_bytes;
    inputs_report.push_back({{"path", file.path}, {"bytes", file.size_bytes}, {"documents", file_documents}});
    if (progress.due()) {
      progress.show(fmt::format("reading   {} / {}  {} documents", human_bytes(static_cast<double>(bytes_read)),
                                human_bytes(static_cast<double>(total_bytes)), human_count(static_cast<double>(documents))));
    }
  }
  progress.finish();
  if (documents == 0) return Status::invalid("the inputs hold no text documents (every file is blank)");
  const double t_read = now_s();
  log_info("read {} documents; training a {}-token BPE tokenizer on {}", documents, options.vocab_size,
           human_bytes(static_cast<double>(sample_bytes)));

  const uint32_t threads = options.num_threads ? options.num_threads : static_cast<uint32_t>(default_thread_count());
  SC_ASSIGN_OR_RETURN(std::string model_bytes,
                      Tokenizer::train(training_pieces, {options.vocab_size, threads, 8192}));
  training_pieces.clear();
  training_pieces.shrink_to_fit();
  SC_ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::from_serialized(model_bytes));
  const uint64_t tokenizer_checksum = checksum64(model_bytes);
  SC_RETURN_IF_ERROR(write_file_atomic((fs::path(staged.path()) / kPreparedTokenizerFile).string(), model_bytes));
  const double t_tokenizer = now_s();
  log_info("tokenizer trained in {:.1f}s", t_tokenizer - t_read);

  // Pass 2: encode in parallel batches of documents; write in document order.
  ThreadPool pool(threads);
  SplitWriter train(staged.path(), "train", tokenizer.vocab_size(), tokenizer_checksum, options.shard_tokens);
  SplitWriter val(staged.path(), "val", tokenizer.vocab_size(), tokenizer_checksum, options.shard_tokens);
  const uint32_t eod = tokenizer.end_of_document_id();
  constexpr size_t kBatchDocuments = 1024;
  std::vector<std::string> batch;
  std::vector<std::vector<uint32_t>> encoded(kBatchDocuments);
  std::vector<Status> errors(threads);
  uint64_t document_index = 0, encoded_bytes = 0;
  const double t_encode_start = now_s();

  auto flush = [&]() -> Status {
    pool.parallel_for(batch.size(), [&](size_t begin, size_t end, size_t thread) {
      for (size_t i = begin; i < end && errors[thread].ok(); ++i) {
        errors[thread] = tokenizer.encode(batch[i], &encoded[i]);
        encoded[i].push_back(eod);
      }
    });
    for (const Status& s : errors) SC_RETURN_IF_ERROR(s);
    for (size_t i = 0; i < batch.size(); ++i, ++document_index) {
      SplitWriter& split = is_validation_document(document_index, options.seed, options.val_fraction) ? val : train;
      SC_RETURN_IF_ERROR(split.add_document(encoded[i]));
    }
    batch.clear();
    if (progress.due()) {
      double elapsed = std::max(1e-9, now_s() - t_encode_start);
      progress.show(fmt::format("encoding  {} / {} documents  {} tokens  {:.1f} MB/s",
                                human_count(static_cast<double>(document_index)), human_count(static_cast<double>(documents)),
                                human_count(static_cast<double>(train.tokens() + val.tokens())),
                                static_cast<double>(encoded_bytes) / 1e6 / elapsed));
    }
    return Status();
  };

  for (const CorpusFile& file : listing.files) {
    SC_RETURN_IF_ERROR(for_each_document(file, [&](std::string_view doc) -> Status {
      batch.emplace_back(doc);
      encoded_bytes += doc.size();
      return batch.size() == kBatchDocuments ? flush() : Status();
    }));
  }
  SC_RETURN_IF_ERROR(flush());
  progress.finish();
  SC_RETURN_IF_ERROR(train.finish());
  SC_RETURN_IF_ERROR(val.finish());
  if (train.tokens() == 0) return Status::invalid("every document went to validation: lower --val-fraction");
  if (options.val_fraction > 0 && val.tokens() == 0) {
    log_warn("no document was drawn for validation ({} documents, --val-fraction {}): there is no val split",
             documents, options.val_fraction);
  }
  const double t_end = now_s();
  const uint64_t tokens = train.tokens() + val.tokens();

  nlohmann::json shards = train.shards();
  for (const auto& s : val.shards()) shards.push_back(s);
  PrepareSummary summary;
  summary.report = {
      {"format_version", kPrepareReportVersion},
      {"created_utc", utc_now()},
      {"inputs", inputs_report},
      {"skipped_files", skipped_report},
      {"bytes_read", bytes_read},
      {"vocab_size", tokenizer.vocab_size()},
      {"tokenizer", kPreparedTokenizerFile},
      {"tokenizer_checksum", fmt::format("{:016x}", tokenizer_checksum)},
      {"end_of_document_id", eod},
      {"seed", options.seed},
      {"val_fraction", options.val_fraction},
      {"documents", {{"train", train.documents()}, {"val", val.documents()}}},
      {"tokens", {{"train", train.tokens()}, {"val", val.tokens()}}},
      {"bytes_per_token", static_cast<double>(bytes_read) / static_cast<double>(tokens)},
      {"shards", shards},
      {"threads", threads},
      {"elapsed_s",
       {{"read", t_read - t_start}, {"tokenizer", t_tokenizer - t_read}, {"encode", t_end - t_encode_start},
        {"total", t_end - t_start}}},
      {"encode_tokens_per_s", static_cast<double>(tokens) / std::max(1e-9, t_end - t_encode_start)},
  };
  SC_RETURN_IF_ERROR(
      write_file_atomic((fs::path(staged.path()) / kPrepareReportFile).string(), summary.report.dump(2) + "\n"));
  SC_RETURN_IF_ERROR(staged.commit());
  return summary;
}

}  // namespace sc
