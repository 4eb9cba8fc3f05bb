# Links C and C++ targets with mold when the compiler accepts
# -fuse-ld=mold (Debian's `mold`, which scripts/setup installs): the ~100
# test, benchmark and tool executables link against the same large static
# libraries, and mold links them several times faster than GNU ld.
# MNEMO_LINKER=default keeps the toolchain's linker.
set(MNEMO_LINKER "AUTO" CACHE STRING "Linker for C/C++ targets: AUTO (mold when available), mold, default")
set_property(CACHE MNEMO_LINKER PROPERTY STRINGS AUTO mold default)

if(NOT MNEMO_LINKER STREQUAL "default")
  include(CheckLinkerFlag)
  check_linker_flag(CXX "-fuse-ld=mold" MNEMO_HAVE_MOLD)
  if(MNEMO_HAVE_MOLD)
    add_link_options("$<$<LINK_LANGUAGE:C,CXX>:-fuse-ld=mold>")
  elseif(MNEMO_LINKER STREQUAL "mold")
    message(FATAL_ERROR "MNEMO_LINKER=mold, but the compiler cannot link with -fuse-ld=mold (install mold)")
  endif()
endif()
