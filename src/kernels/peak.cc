#include "kernels/peak.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "kernels/matmul.h"

namespace sc {

double measure_matmul_peak_gflops(ThreadPool& pool, size_t n, int repeats) {
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
  matmul_forward(pool, c.data(), a.data(), b.data(), n, n, n, false);  // warm up
  double best_s = 1e30;
  for (int r = 0; r < repeats; ++r) {
    auto start = std::chrono::steady_clock::now();
    matmul_forward(pool, c.data(), a.data(), b.data(), n, n, n, false);
    best_s = std::min(best_s, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return 2.0 * static_cast<double>(n) * n * n / best_s / 1e9;
}

}  // namespace sc
