#include "data/staged_directory.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "test_util.h"

namespace sc {
namespace {
namespace fs = std::filesystem;

bool anything(std::string_view) { return true; }

std::set<std::string> names_in(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

// A pid no process has: a child's, after it exited and was reaped.
long dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);
  return pid;
}

TEST(StagedDirectory, NewOutputAppearsWholeOnCommit) {
  testing::TempDir dir;
  const std::string out = dir.file("deeper/out");
  auto staged = StagedDirectory::create(out, anything);
  ASSERT_TRUE(staged.ok()) << staged.status().message();
  EXPECT_EQ(fs::path(staged->path()).parent_path(), fs::path(dir.file("deeper")));
  testing::write_text(staged->path() + "/a.txt", "new");
  EXPECT_FALSE(fs::exists(out));
  ASSERT_TRUE(staged->commit().ok());
  EXPECT_EQ(testing::read_text(out + "/a.txt"), "new");
  EXPECT_EQ(names_in(dir.file("deeper")), std::set<std::string>{"out"});
}

TEST(StagedDirectory, ExistingOutputIsReplacedWholeKeepingItsPermissions) {
  testing::TempDir dir;
  const std::string out = dir.file("out");
  testing::write_text(out + "/old.txt", "old");
  fs::permissions(out, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
  auto staged = StagedDirectory::create(out, anything);
  ASSERT_TRUE(staged.ok()) << staged.status().message();
  testing::write_text(staged->path() + "/new.txt", "new");
  EXPECT_EQ(names_in(out), std::set<std::string>{"old.txt"});
  ASSERT_TRUE(staged->commit().ok());
  EXPECT_EQ(names_in(out), std::set<std::string>{"new.txt"});
  EXPECT_EQ(fs::status(out).permissions(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
  EXPECT_EQ(names_in(dir.path()), std::set<std::string>{"out"});
}

TEST(StagedDirectory, UncommittedStagingIsRemoved) {
  testing::TempDir dir;
  const std::string out = dir.file("out");
  testing::write_text(out + "/old.txt", "old");
  {
    auto staged = StagedDirectory::create(out, anything);
    ASSERT_TRUE(staged.ok());
    testing::write_text(staged->path() + "/new.txt", "new");
  }
  EXPECT_EQ(names_in(dir.path()), std::set<std::string>{"out"});
  EXPECT_EQ(testing::read_text(out + "/old.txt"), "old");
}

TEST(StagedDirectory, RefusesWhatWouldLoseData) {
  testing::TempDir dir;
  const std::string out = dir.file("out");
  testing::write_text(out + "/mine.bin", "x");
  testing::write_text(out + "/notes.txt", "keep me");
  auto staged = StagedDirectory::create(out, [](std::string_view name) { return name == "mine.bin"; });
  ASSERT_FALSE(staged.ok());
  EXPECT_NE(staged.status().message().find("holds 'notes.txt', which prepare did not write"), std::string::npos)
      << staged.status().message();
  EXPECT_EQ(names_in(dir.path()), std::set<std::string>{"out"});

  testing::write_text(dir.file("a_file"), "x");
  auto not_a_directory = StagedDirectory::create(dir.file("a_file"), anything);
  ASSERT_FALSE(not_a_directory.ok());
  EXPECT_NE(not_a_directory.status().message().find("a_file: exists and is not a directory"), std::string::npos);
  EXPECT_FALSE(StagedDirectory::create("/", anything).ok());
  EXPECT_FALSE(StagedDirectory::create("", anything).ok());
}

TEST(StagedDirectory, LinkedOutputReplacesItsTarget) {
  testing::TempDir dir;
  testing::write_text(dir.file("real/old.txt"), "old");
  fs::create_directory_symlink("real", dir.file("link"));
  auto staged = StagedDirectory::create(dir.file("link") + "/", anything);
  ASSERT_TRUE(staged.ok()) << staged.status().message();
  testing::write_text(staged->path() + "/new.txt", "new");
  ASSERT_TRUE(staged->commit().ok());
  EXPECT_TRUE(fs::is_symlink(dir.file("link")));
  EXPECT_EQ(names_in(dir.file("real")), std::set<std::string>{"new.txt"});
}

// A run killed at any point leaves the previous output or the new one; what
// it leaves beside is cleaned up by the next run, and only a dead run's.
TEST(StagedDirectory, LeftoversOfDeadRunsAreCleanedUp) {
  testing::TempDir dir;
  const std::string out = dir.file("out");
  testing::write_text(out + "/old.txt", "old");
  const std::string dead_staging = dir.file(fmt::format(".out.staging.{}", dead_pid()));
  const std::string live_staging = dir.file(fmt::format(".out.staging.{}", ::getppid()));
  testing::write_text(dead_staging + "/half.txt", "half");
  testing::write_text(live_staging + "/busy.txt", "busy");
  auto staged = StagedDirectory::create(out, anything);
  ASSERT_TRUE(staged.ok()) << staged.status().message();
  EXPECT_FALSE(fs::exists(dead_staging));
  EXPECT_TRUE(fs::exists(live_staging));
}

// Killed between the two renames of the fallback: no output, the previous
// one aside. The next run puts it back before anything else.
TEST(StagedDirectory, OutputMovedAsideByADeadRunIsRestored) {
  testing::TempDir dir;
  const std::string out = dir.file("out");
  testing::write_text(dir.file(fmt::format(".out.previous.{}", dead_pid())) + "/old.txt", "old");
  testing::write_text(dir.file("notes.txt"), "beside");
  auto staged = StagedDirectory::create(out, [](std::string_view name) { return name == "old.txt"; });
  ASSERT_TRUE(staged.ok()) << staged.status().message();
  EXPECT_EQ(testing::read_text(out + "/old.txt"), "old");
}

TEST(StagedDirectory, BothWaysOfReplacing) {
  testing::TempDir dir;
  testing::write_text(dir.file("out/old.txt"), "old");
  testing::write_text(dir.file("staged/new.txt"), "new");
  ASSERT_TRUE(replace_directory_by_renames(dir.file("staged"), dir.file("out"), dir.file("aside")).ok());
  EXPECT_EQ(names_in(dir.file("out")), std::set<std::string>{"new.txt"});
  EXPECT_EQ(names_in(dir.file("aside")), std::set<std::string>{"old.txt"});

  auto exchanged = exchange_directories(dir.file("aside"), dir.file("out"));
  ASSERT_TRUE(exchanged.ok()) << exchanged.status().message();
  if (*exchanged) {
    EXPECT_EQ(names_in(dir.file("out")), std::set<std::string>{"old.txt"});
    EXPECT_EQ(names_in(dir.file("aside")), std::set<std::string>{"new.txt"});
  }
  EXPECT_FALSE(replace_directory_by_renames(dir.file("missing"), dir.file("out"), dir.file("aside2")).ok());
  EXPECT_TRUE(fs::exists(dir.file("out")));  // put back when the second rename fails
}

}  // namespace
}  // namespace sc
