#include "serve/chat_template.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace sc {
namespace {

TEST(ChatTemplate, TheDefaultWritesADialogueForTheAssistantToContinue) {
  const ChatTemplate t;
  auto text = t.render({{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "Why?"}});
  ASSERT_TRUE(text.ok()) << text.status().message();
  EXPECT_EQ(*text, "System: Be brief.\nUser: Hi\nAssistant: Hello.\nUser: Why?\nAssistant:");
  EXPECT_EQ(t.stop, std::vector<std::string>{"\nUser:"});
}

TEST(ChatTemplate, AnUnknownRoleIsAnErrorNamingIt) {
  auto text = ChatTemplate().render({{"user", "a"}, {"robot", "b"}});
  ASSERT_FALSE(text.ok());
  EXPECT_NE(text.status().message().find("messages[1].role"), std::string::npos) << text.status().message();
  EXPECT_NE(text.status().message().find("robot"), std::string::npos);
}

TEST(ChatTemplate, AFileOverridesTheFieldsItHas) {
  auto t = ChatTemplate::parse(R"({"user": "<u>{content}</u>", "generation_prompt": "<a>", "stop": ["</a>"]})", "t");
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(*t->render({{"system", "S"}, {"user", "x {content} y"}}), "System: S\n<u>x {content} y</u><a>");
  EXPECT_EQ(t->stop, std::vector<std::string>{"</a>"});
}

TEST(ChatTemplate, BadFilesAreErrorsNamingTheField) {
  EXPECT_NE(ChatTemplate::parse(R"({"user": "no placeholder"})", "t").status().message().find("'user'"),
            std::string::npos);
  EXPECT_NE(ChatTemplate::parse(R"({"stop": [1]})", "t").status().message().find("'stop'"), std::string::npos);
  EXPECT_NE(ChatTemplate::parse(R"({"system": 3})", "t").status().message().find("'system'"), std::string::npos);
  EXPECT_FALSE(ChatTemplate::parse("{", "t").ok());
}

TEST(ChatTemplate, LoadsFromTheCheckpointDirectoryOrDefaults) {
  testing::TempDir dir;
  auto fallback = ChatTemplate::load(dir.path());
  ASSERT_TRUE(fallback.ok());
  EXPECT_EQ(fallback->generation_prompt, "Assistant:");
  testing::write_text(dir.file(kChatTemplateFile), R"({"generation_prompt": "Bot:"})");
  auto custom = ChatTemplate::load(dir.path());
  ASSERT_TRUE(custom.ok()) << custom.status().message();
  EXPECT_EQ(custom->generation_prompt, "Bot:");
}

}  // namespace
}  // namespace sc
