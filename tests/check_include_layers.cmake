# The include rules of docs/architecture.md, section 1: for every header under include/nll, each
# `#include "…"` must resolve to a folder the header's own folder may include.
#   detail/  detail/
#   math/    math/, detail/, core/check.hpp
#   core/    core/, detail/
#   dist/    dist/, core/, math/, detail/
# (the top-level nll.hpp and version.hpp may include anything). Library headers include each other
# by relative path only: `#include <nll/…>` inside include/nll is also an error.
#   cmake -DROOT=<include dir> -P check_include_layers.cmake
if(NOT DEFINED ROOT)
  message(FATAL_ERROR "usage: cmake -DROOT=<repository>/include -P check_include_layers.cmake")
endif()
set(allowed_detail "detail/")
set(allowed_math "math/;detail/;core/check.hpp")
set(allowed_core "core/;detail/")
set(allowed_dist "dist/;core/;math/;detail/")

file(GLOB_RECURSE headers RELATIVE "${ROOT}/nll" "${ROOT}/nll/*.hpp")
set(violations "")
set(checked 0)
foreach(header IN LISTS headers)
  get_filename_component(folder "${header}" DIRECTORY)
  if(folder STREQUAL "")
    continue() # nll.hpp, version.hpp
  endif()
  if(NOT DEFINED allowed_${folder})
    string(APPEND violations "\n  ${header}: folder ${folder}/ has no include rule in this script")
    continue()
  endif()
  file(STRINGS "${ROOT}/nll/${header}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"]")
  foreach(line IN LISTS lines)
    if(line MATCHES "#[ \t]*include[ \t]*<nll/")
      string(APPEND violations "\n  ${header}: ${line} (use a relative include)")
      continue()
    endif()
    if(NOT line MATCHES "#[ \t]*include[ \t]*\"([^\"]+)\"")
      continue() # the standard library, Eigen, intrinsics
    endif()
    # Resolve the quoted path against the header's folder, relative to include/nll.
    get_filename_component(target "${ROOT}/nll/${folder}/${CMAKE_MATCH_1}" ABSOLUTE)
    file(RELATIVE_PATH target "${ROOT}/nll" "${target}")
    math(EXPR checked "${checked} + 1")
    set(ok FALSE)
    foreach(prefix IN LISTS allowed_${folder})
      string(FIND "${target}" "${prefix}" position)
      if(position EQUAL 0)
        set(ok TRUE)
      endif()
    endforeach()
    if(NOT ok)
      string(APPEND violations "\n  ${header} includes ${target}: ${folder}/ may include only ${allowed_${folder}}")
    endif()
  endforeach()
endforeach()
if(checked EQUAL 0)
  message(FATAL_ERROR "no includes found under ${ROOT}/nll: wrong ROOT?")
endif()
if(violations)
  message(FATAL_ERROR "include rules (docs/architecture.md, section 1) broken:${violations}")
endif()
message(STATUS "${checked} includes follow the layer rules")
