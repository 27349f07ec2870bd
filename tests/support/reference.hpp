// nll tests: reading committed reference tables and measuring errors in units of epsilon.
//
// A table is a text file under tests/data: lines starting with '#' are comments; every other
// non-blank line is one record of whitespace-separated fields. Numbers are written with enough
// digits for long double (mpmath at 50 digits, printed with 25 significant digits); "inf", "-inf"
// and "nan" are accepted. A field may also be a word (a case name); use record::text for those.
#pragma once

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace nll_test {

struct Record {
  std::vector<std::string> fields;
  /// Field k as a long double ("inf", "-inf", "nan" included).
  long double number(std::size_t k) const {
    const std::string& f = fields.at(k);
    if (f == "inf" || f == "+inf") return std::numeric_limits<long double>::infinity();
    if (f == "-inf") return -std::numeric_limits<long double>::infinity();
    if (f == "nan") return std::numeric_limits<long double>::quiet_NaN();
    return std::stold(f);
  }
  const std::string& text(std::size_t k) const { return fields.at(k); }
  std::size_t size() const { return fields.size(); }
};

/// Reads tests/data/<name>; throws if the file is missing or empty.
inline std::vector<Record> read_table(const std::string& name) {
  const std::string path = std::string(NLL_TEST_DATA_DIR) + "/" + name;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open reference table " + path);
  std::vector<Record> records;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    Record r;
    for (std::string f; fields >> f;) r.fields.push_back(f);
    if (!r.fields.empty()) records.push_back(std::move(r));
  }
  if (records.empty()) throw std::runtime_error("reference table " + path + " has no records");
  return records;
}

/// The error of `actual` against the exact `expected`, in units of epsilon of T, relative to
/// |expected| (relative error / eps). Exact matches (including equal infinities and NaN against
/// NaN) are 0; a NaN/inf mismatch is +inf. For |expected| below the smallest normal of T the
/// error is measured in units of that smallest normal's epsilon (absolute, subnormal-aware).
template <class T> long double error_in_eps(long double actual, long double expected) {
  if (std::isnan(expected) || std::isnan(actual))
    return (std::isnan(expected) && std::isnan(actual)) ? 0.0L : std::numeric_limits<long double>::infinity();
  if (std::isinf(expected) || std::isinf(actual))
    return actual == expected ? 0.0L : std::numeric_limits<long double>::infinity();
  const long double eps = std::numeric_limits<T>::epsilon();
  const long double scale = std::max(std::fabs(expected), static_cast<long double>(std::numeric_limits<T>::min()));
  return std::fabs(actual - expected) / (scale * eps);
}

} // namespace nll_test
