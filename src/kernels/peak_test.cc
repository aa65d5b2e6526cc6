#include "kernels/peak.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "core/json_reader.h"
#include "test_util.h"

namespace sc {
namespace {

// Points $XDG_CACHE_HOME at `dir` for the life of the object.
class CacheHome {
 public:
  explicit CacheHome(const std::string& dir) {
    if (const char* old = std::getenv("XDG_CACHE_HOME")) old_ = old;
    ::setenv("XDG_CACHE_HOME", dir.c_str(), 1);
  }
  ~CacheHome() {
    if (old_.empty()) {
      ::unsetenv("XDG_CACHE_HOME");
    } else {
      ::setenv("XDG_CACHE_HOME", old_.c_str(), 1);
    }
  }

 private:
  std::string old_;
};

// Issue 15, items 1 and 4: the peak cache is a file anyone can edit. Nested
// 100,000 deep it crashed the rewrite of the cache; a recorded peak of 1e300
// made every MFU zero.
TEST(MatmulPeak, ACacheOfAnyShapeIsMeasuredAfresh) {
  testing::TempDir home;
  CacheHome cache_home(home.path());
  const std::string cache = home.file("supercluster/matmul_peak.json");
  ThreadPool pool(1);
  const size_t depth = 100000;
  testing::write_text(cache, "{\"x\": " + std::string(depth, '[') + std::string(depth, ']') + "}");
  EXPECT_GT(matmul_peak_gflops(pool), 0);
  auto rewritten = parse_json(testing::read_text(cache), cache);
  ASSERT_TRUE(rewritten.ok()) << rewritten.status().message();
  ASSERT_TRUE(rewritten->is_object());
  EXPECT_EQ(rewritten->size(), 1u);  // this machine's peak; the nested value is gone
  auto recorded = parse_json(testing::read_text(cache), cache);
  ASSERT_TRUE(recorded.ok());
  nlohmann::json edited = *recorded;
  for (auto& [key, value] : edited.items()) {
    if (value.is_number()) value = 1e300;
  }
  testing::write_text(cache, edited.dump());
  EXPECT_LT(matmul_peak_gflops(pool), 1e6);
}

}  // namespace
}  // namespace sc
