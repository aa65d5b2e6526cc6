#include "core/executable_path.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace sc {
namespace {

TEST(ExecutablePath, IsThisTestBinary) {
  auto path = executable_path();
  ASSERT_TRUE(path.ok()) << path.status().message();
  const std::filesystem::path p(*path);
  EXPECT_TRUE(p.is_absolute()) << *path;
  EXPECT_EQ(p.filename(), "supercluster_tests");
  // The resolved file, not the /proc link: the same inode as the link's target.
  EXPECT_TRUE(std::filesystem::equivalent(p, "/proc/self/exe")) << *path;
}

}  // namespace
}  // namespace sc
