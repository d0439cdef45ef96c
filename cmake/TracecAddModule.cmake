# tracec_add_module(): compile a tracec model into an IREE module and embed it in C.
#
#   include(cmake/TracecAddModule.cmake)
#   tracec_add_module(lif2 SRC examples/lif2.py
#                     ARGS --algorithm forward --cpu generic   # extra tracec flags
#                     DEPENDS examples/helpers.py)              # optional extra inputs
#   target_link_libraries(my_app PRIVATE lif2)                 # #include "lif2.h"
#
# Builds, in the current binary directory:
#   NAME.vmfb                 `tracec SRC -o NAME.vmfb ARGS...` (re-run when SRC, a
#                             DEPENDS file, or the tracec executable changes)
#   NAME_embed/NAME.h, .c     `iree-c-embed-data` of the vmfb; the header declares
#                             `const iree_file_toc_t* NAME_create(void)` whose entry
#                             [0] has .name ("NAME.vmfb"), .data and .size (bytes);
#                             entry [1] is {NULL, NULL, 0}.
# Targets:
#   NAME         static C library holding the bytes; its include dir is PUBLIC.
#   NAME_vmfb    builds only the .vmfb (depend on it if you consume the file itself).
# Target property TRACEC_VMFB on NAME (and NAME_vmfb): absolute path of the .vmfb.
#
# Tools: TRACEC_EXECUTABLE and IREE_C_EMBED_DATA_EXECUTABLE (cache variables; pass
# -DTRACEC_EXECUTABLE=/path/to/tracec to choose one). Searched in $VIRTUAL_ENV/bin,
# then <this repo>/.venv/bin, then PATH.

include_guard(GLOBAL)

set(_tracec_hints "")
if(DEFINED ENV{VIRTUAL_ENV} AND NOT "$ENV{VIRTUAL_ENV}" STREQUAL "")
  list(APPEND _tracec_hints "$ENV{VIRTUAL_ENV}/bin")
endif()
get_filename_component(_tracec_repo_root "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
list(APPEND _tracec_hints "${_tracec_repo_root}/.venv/bin")

find_program(TRACEC_EXECUTABLE NAMES tracec HINTS ${_tracec_hints}
             DOC "the tracec compiler (tracec model.py -o model.vmfb)")
find_program(IREE_C_EMBED_DATA_EXECUTABLE NAMES iree-c-embed-data HINTS ${_tracec_hints}
             DOC "IREE's iree-c-embed-data (from the iree-base-runtime wheel)")

function(tracec_add_module NAME)
  cmake_parse_arguments(PARSE_ARGV 1 _TAM "" "SRC" "ARGS;DEPENDS")
  if(_TAM_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "tracec_add_module(${NAME}): unknown arguments: ${_TAM_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT _TAM_SRC)
    message(FATAL_ERROR "tracec_add_module(${NAME}): SRC <model.py> is required")
  endif()
  foreach(_flag IN LISTS _TAM_ARGS)
    if(_flag STREQUAL "-o" OR _flag MATCHES "^--output(=|$)")
      message(FATAL_ERROR "tracec_add_module(${NAME}): do not pass -o/--output in ARGS; "
                          "the output is ${NAME}.vmfb in the binary directory")
    endif()
  endforeach()
  if(NOT TRACEC_EXECUTABLE OR NOT EXISTS "${TRACEC_EXECUTABLE}")
    message(FATAL_ERROR "tracec_add_module(${NAME}): tracec not found; install tracec "
                        "(pip install -e .) or pass -DTRACEC_EXECUTABLE=/path/to/tracec")
  endif()
  if(NOT IREE_C_EMBED_DATA_EXECUTABLE OR NOT EXISTS "${IREE_C_EMBED_DATA_EXECUTABLE}")
    message(FATAL_ERROR "tracec_add_module(${NAME}): iree-c-embed-data not found; it comes "
                        "with the iree-base-runtime wheel, or pass -DIREE_C_EMBED_DATA_EXECUTABLE=")
  endif()

  get_filename_component(_src "${_TAM_SRC}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  if(NOT EXISTS "${_src}")
    message(FATAL_ERROR "tracec_add_module(${NAME}): no such file: ${_src}")
  endif()
  # Run tracec from the source directory with a relative path when possible, so the
  # artifact's manifest records `examples/lif2.py` rather than this machine's path.
  file(RELATIVE_PATH _src_arg "${CMAKE_CURRENT_SOURCE_DIR}" "${_src}")
  if(_src_arg MATCHES "^\\.\\./")
    set(_src_arg "${_src}")
  endif()
  set(_deps "${_src}")
  foreach(_d IN LISTS _TAM_DEPENDS)
    get_filename_component(_d "${_d}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND _deps "${_d}")
  endforeach()

  string(MAKE_C_IDENTIFIER "${NAME}" _ident)
  set(_vmfb "${CMAKE_CURRENT_BINARY_DIR}/${NAME}.vmfb")
  set(_embed_dir "${CMAKE_CURRENT_BINARY_DIR}/${NAME}_embed")
  set(_h "${_embed_dir}/${NAME}.h")
  set(_c "${_embed_dir}/${NAME}.c")

  add_custom_command(
    OUTPUT "${_vmfb}"
    COMMAND "${TRACEC_EXECUTABLE}" "${_src_arg}" -o "${_vmfb}" ${_TAM_ARGS}
    DEPENDS ${_deps} "${TRACEC_EXECUTABLE}"
    WORKING_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}"
    COMMENT "tracec ${_src_arg} -> ${NAME}.vmfb"
    VERBATIM)
  # One target owns the .vmfb rule; everything else that reads the file depends on it
  # (with Makefile generators, two independent targets must not both run the rule).
  add_custom_target(${NAME}_vmfb DEPENDS "${_vmfb}")

  add_custom_command(
    OUTPUT "${_h}" "${_c}"
    COMMAND "${CMAKE_COMMAND}" -E make_directory "${_embed_dir}"
    COMMAND "${IREE_C_EMBED_DATA_EXECUTABLE}" "--output_header=${_h}" "--output_impl=${_c}"
            "--identifier=${_ident}" --flatten "${_vmfb}"
    DEPENDS "${_vmfb}" ${NAME}_vmfb
    COMMENT "iree-c-embed-data ${NAME}.vmfb -> ${NAME}_embed/${NAME}.{h,c}"
    VERBATIM)

  add_library(${NAME} STATIC "${_c}" "${_h}")
  add_dependencies(${NAME} ${NAME}_vmfb)
  set_target_properties(${NAME} PROPERTIES LINKER_LANGUAGE C C_STANDARD 11 C_STANDARD_REQUIRED ON
                                           TRACEC_VMFB "${_vmfb}")
  set_target_properties(${NAME}_vmfb PROPERTIES TRACEC_VMFB "${_vmfb}")
  target_include_directories(${NAME} PUBLIC "$<BUILD_INTERFACE:${_embed_dir}>")
endfunction()
