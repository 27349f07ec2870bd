// The version macro is the one source of truth; CMake reads it and passes it back here.
#include <nll/version.hpp>

#include <string>

#include "support/catch.hpp"

TEST_CASE("NLL_VERSION_STRING agrees with the three version macros and with CMake") {
  const std::string expected = std::to_string(NLL_VERSION_MAJOR) + "." + std::to_string(NLL_VERSION_MINOR) + "." +
                               std::to_string(NLL_VERSION_PATCH);
  CHECK(std::string(NLL_VERSION_STRING) == expected);
  CHECK(std::string(NLL_VERSION_STRING) == NLL_CMAKE_PROJECT_VERSION);
}
