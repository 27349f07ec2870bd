# Compile-fail test driver:
#   cmake -DCOMPILER=<c++> -DSOURCE=<file.cpp> "-DINCLUDES=<dir>|<dir>" -P expect_compile_failure.cmake
# SOURCE holds a line "// EXPECT: <text>". The test passes only if
#   1. SOURCE compiled with -DNLL_COMPILE_FAIL_CONTROL succeeds (the harness itself works), and
#   2. SOURCE compiled as it is fails with exactly one error, whose output contains <text>
#      (a readable static_assert, not pages of template errors).
foreach(var COMPILER SOURCE INCLUDES)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "expect_compile_failure.cmake: ${var} is not set")
  endif()
endforeach()
file(STRINGS "${SOURCE}" expect_line REGEX "^// EXPECT: ")
if(NOT expect_line)
  message(FATAL_ERROR "${SOURCE} has no '// EXPECT: ' line")
endif()
string(REGEX REPLACE "^// EXPECT: " "" expect "${expect_line}")

string(REPLACE "|" ";" include_dirs "${INCLUDES}")
set(flags -std=c++20 -fsyntax-only)
foreach(dir IN LISTS include_dirs)
  list(APPEND flags "-I${dir}")
endforeach()

execute_process(COMMAND "${COMPILER}" ${flags} -DNLL_COMPILE_FAIL_CONTROL "${SOURCE}"
  RESULT_VARIABLE control_result OUTPUT_VARIABLE control_output ERROR_VARIABLE control_output)
if(NOT control_result EQUAL 0)
  message(FATAL_ERROR "the control build (-DNLL_COMPILE_FAIL_CONTROL) failed:\n${control_output}")
endif()

execute_process(COMMAND "${COMPILER}" ${flags} "${SOURCE}"
  RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
message(STATUS "compiler output:\n${output}")
if(result EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but must not")
endif()
string(FIND "${output}" "${expect}" position)
if(position EQUAL -1)
  message(FATAL_ERROR "the compiler output does not contain '${expect}'")
endif()
string(REGEX MATCHALL "error:" errors "${output}")
list(LENGTH errors error_count)
if(NOT error_count EQUAL 1)
  message(FATAL_ERROR "expected exactly one error (the static_assert), got ${error_count}")
endif()
