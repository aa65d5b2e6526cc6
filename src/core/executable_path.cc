#include "core/executable_path.h"

#include <filesystem>
#include <system_error>

namespace sc {

Result<std::string> executable_path() {
  std::error_code error;
  const std::filesystem::path path = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error || path.empty())
    return Status::io_error("/proc/self/exe: cannot read the path of this program ({})",
                            error ? error.message() : "empty link");
  return path.string();
}

}  // namespace sc
