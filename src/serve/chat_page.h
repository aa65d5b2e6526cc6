// GET /: a chat page served from the binary (plain HTML, CSS and JavaScript;
// no build step, nothing fetched from elsewhere). It talks to
// /v1/chat/completions with stream: true, keeps the conversation in the page,
// and shows tokens per second as the reply streams in.
#pragma once

#include <string_view>

namespace sc {

std::string_view chat_page_html();

}  // namespace sc
