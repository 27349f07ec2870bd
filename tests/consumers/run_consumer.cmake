# Runs one consumer test (cmake -P). Variables (all -D):
#   MODE           find_package or add_subdirectory
#   NLL_SOURCE_DIR nll's source tree;   NLL_BINARY_DIR the outer build tree (installed from)
#   WORK_DIR       scratch directory (wiped first)
#   CXX, GENERATOR, MAKE_PROGRAM, BUILD_TYPE, EXPECTED_VERSION   from the outer build
#
# find_package: `cmake --install` the outer build into WORK_DIR/prefix, then configure, build and
# run tests/consumers/find_package against that prefix; then compile the same program with only the
# flags `pkg-config --cflags nll` gives (when pkg-config is available).
# add_subdirectory: configure, build and run tests/consumers/add_subdirectory on nll's source tree.
cmake_minimum_required(VERSION 3.25)

foreach(_var IN ITEMS MODE NLL_SOURCE_DIR NLL_BINARY_DIR WORK_DIR CXX GENERATOR EXPECTED_VERSION)
  if(NOT DEFINED ${_var} OR "${${_var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: -D${_var}=... is required")
  endif()
endforeach()

function(nll_run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE _result)
  if(NOT _result EQUAL 0)
    string(REPLACE ";" " " _command "${ARGV}")
    message(FATAL_ERROR "consumer ${MODE}: command failed (${_result}):\n  ${_command}")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(_prefix "${WORK_DIR}/prefix")
set(_build "${WORK_DIR}/build")
set(_source "${NLL_SOURCE_DIR}/tests/consumers/${MODE}")

set(_configure_args
  -G "${GENERATOR}"
  -DCMAKE_CXX_COMPILER=${CXX}
  -DNLL_EXPECTED_VERSION=${EXPECTED_VERSION}
  # Find only what this test put there, never a user or system package registry.
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
  -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
if(MAKE_PROGRAM)
  list(APPEND _configure_args -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
endif()
if(BUILD_TYPE)
  list(APPEND _configure_args -DCMAKE_BUILD_TYPE=${BUILD_TYPE})
endif()

if(MODE STREQUAL "find_package")
  if(BUILD_TYPE)
    nll_run(${CMAKE_COMMAND} --install "${NLL_BINARY_DIR}" --prefix "${_prefix}" --config ${BUILD_TYPE})
  else()
    nll_run(${CMAKE_COMMAND} --install "${NLL_BINARY_DIR}" --prefix "${_prefix}")
  endif()
  list(APPEND _configure_args -DCMAKE_PREFIX_PATH=${_prefix} -DNLL_EXPECTED_PREFIX=${_prefix})
elseif(MODE STREQUAL "add_subdirectory")
  list(APPEND _configure_args -DNLL_SOURCE_DIR=${NLL_SOURCE_DIR})
else()
  message(FATAL_ERROR "run_consumer.cmake: unknown MODE '${MODE}'")
endif()

nll_run(${CMAKE_COMMAND} -S "${_source}" -B "${_build}" ${_configure_args})
nll_run(${CMAKE_COMMAND} --build "${_build}")
nll_run("${_build}/consumer")

if(MODE STREQUAL "find_package")
  find_program(_pkg_config pkg-config)
  if(NOT _pkg_config)
    message(STATUS "consumer find_package: pkg-config not found; nll.pc not checked")
    return()
  endif()
  execute_process(
    COMMAND ${CMAKE_COMMAND} -E env "PKG_CONFIG_PATH=${_prefix}/share/pkgconfig" ${_pkg_config} --cflags nll
    OUTPUT_VARIABLE _cflags OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _result)
  if(NOT _result EQUAL 0)
    message(FATAL_ERROR "consumer find_package: pkg-config --cflags nll failed (${_result})")
  endif()
  message(STATUS "pkg-config --cflags nll: ${_cflags}")
  separate_arguments(_cflags UNIX_COMMAND "${_cflags}")
  nll_run(${CXX} -std=c++20 -O1 ${_cflags} "-DNLL_CONSUMER_EXPECTED_VERSION=\"${EXPECTED_VERSION}\""
    "${NLL_SOURCE_DIR}/tests/consumers/common/main.cpp" -o "${WORK_DIR}/consumer_pkg_config")
  nll_run("${WORK_DIR}/consumer_pkg_config")
endif()
