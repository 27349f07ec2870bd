// nll tests: the kernel reference tables written by scripts/gen_reference_kernels.py.
//
// Input columns are Python reprs of doubles (shortest round-trip decimals): they are parsed with
// std::stod, so they give exactly the double (and, for rows of kind "fd", the float) the script
// used. Expected values are parsed as long double (30 significant digits from mpmath).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iomanip>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "reference.hpp"

namespace nll_test {

/// An input field: a double, exactly as the script wrote it ("inf", "-inf", "nan" included).
/// std::strtod, not std::stod: stod throws on subnormal inputs (ERANGE), strtod returns them exactly.
inline double input(const Record& r, std::size_t k) {
  const std::string& f = r.text(k);
  char* end = nullptr;
  const double v = std::strtod(f.c_str(), &end);
  if (end != f.c_str() + f.size()) throw std::runtime_error("not a number in a reference table: " + f);
  return v;
}

/// One scalar-kernel record: `kind x expected`; float_ok is false for double-only inputs.
struct ScalarCase {
  bool float_ok;
  double x;
  long double expected;
};

inline std::vector<ScalarCase> read_scalar_table(const std::string& name) {
  std::vector<ScalarCase> out;
  for (const Record& r : read_table(name)) out.push_back({r.text(0) == "fd", input(r, 1), r.number(2)});
  return out;
}

/// x_j = ((j·p) mod q − r) / s, the generator of the long rows (see the script's header).
inline std::vector<double> generated_row(std::int64_t n, std::int64_t p, std::int64_t q, std::int64_t r,
                                         std::int64_t s) {
  std::vector<double> x(static_cast<std::size_t>(n));
  for (std::int64_t j = 0; j < n; ++j)
    x[static_cast<std::size_t>(j)] = static_cast<double>((j * p) % q - r) / static_cast<double>(s);
  return x;
}

/// One log-sum-exp record: a listed or generated row, its log-sum-exp and log s = lse − max x
/// (NaN when the maximum is not finite): x_j − lse is formed as (x_j − max) − log s, which keeps
/// the digits of log s that lse itself cannot hold (lse = 1e300 + log 2).
struct LseRow {
  std::string name;
  bool float_ok;
  std::vector<double> x;
  long double expected;
  long double log_s;
};

inline std::vector<LseRow> read_lse_table() {
  std::vector<LseRow> out;
  for (const Record& r : read_table("kernels_log_sum_exp.txt")) {
    LseRow row{r.text(0), r.text(1) == "fd", {}, r.number(3), r.number(4)};
    const auto n = static_cast<std::int64_t>(std::stoll(r.text(2)));
    if (r.text(5) == "list") {
      for (std::int64_t j = 0; j < n; ++j) row.x.push_back(input(r, 6 + static_cast<std::size_t>(j)));
    } else if (r.text(5) == "gen") {
      row.x =
          generated_row(n, std::stoll(r.text(6)), std::stoll(r.text(7)), std::stoll(r.text(8)), std::stoll(r.text(9)));
      for (std::size_t k = 10; k < r.size(); k += 3) {
        if (r.text(k) != "set") throw std::runtime_error("kernels_log_sum_exp.txt: expected 'set' in row " + row.name);
        row.x.at(static_cast<std::size_t>(std::stoll(r.text(k + 1)))) = input(r, k + 2);
      }
    } else {
      throw std::runtime_error("kernels_log_sum_exp.txt: unknown row form " + r.text(5));
    }
    if (static_cast<std::int64_t>(row.x.size()) != n)
      throw std::runtime_error("kernels_log_sum_exp.txt: bad length in " + row.name);
    out.push_back(std::move(row));
  }
  return out;
}

/// One log-softmax record: the row, its log_softmax and its softmax.
struct SoftmaxRow {
  std::string name;
  bool float_ok;
  std::vector<double> x;
  std::vector<long double> log_softmax, softmax;
};

inline std::vector<SoftmaxRow> read_softmax_table() {
  std::vector<SoftmaxRow> out;
  for (const Record& r : read_table("kernels_log_softmax.txt")) {
    SoftmaxRow row{r.text(0), r.text(1) == "fd", {}, {}, {}};
    const auto n = static_cast<std::size_t>(std::stoll(r.text(2)));
    if (r.size() != 3 + 3 * n) throw std::runtime_error("kernels_log_softmax.txt: bad record " + row.name);
    for (std::size_t j = 0; j < n; ++j) {
      row.x.push_back(input(r, 3 + j));
      row.log_softmax.push_back(r.number(3 + n + j));
      row.softmax.push_back(r.number(3 + 2 * n + j));
    }
    out.push_back(std::move(row));
  }
  return out;
}

/// The worst error seen so far and where: for the test log.
struct Worst {
  long double error = 0;
  std::string where;
  void update(long double e, const std::string& at) {
    if (e > error || (std::isnan(e) && !std::isnan(error))) {
      error = e;
      where = at;
    }
  }
  std::string report(const std::string& what) const {
    std::ostringstream s;
    s << what << ": worst error " << std::setprecision(3) << static_cast<double>(error) << " eps";
    if (!where.empty()) s << " at " << where;
    return s.str();
  }
};

/// A value for the log: full precision.
inline std::string show(long double v) {
  std::ostringstream s;
  s << std::setprecision(21) << v;
  return s.str();
}

} // namespace nll_test
