// Numbers as a person reads them on a progress line or in a summary.
#pragma once

#include <string>

namespace sc {

std::string human_count(double n);          // 12.59M, 4.5k, 812
std::string human_bytes(double bytes);      // 7.1 MB, 1.23 GB
std::string human_duration(double seconds);  // 3m07s, 1h05m, 42s; "?" if unknown

}  // namespace sc
