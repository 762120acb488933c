# Compiles one source file with clang++ -fsyntax-only -Wthread-safety -Werror=thread-safety,
# using the flags of its entry in compile_commands.json, so that Clang checks the lock
# annotations (src/core/thread_annotations.h) even where the build itself uses g++.
#
#   cmake -DCLANGXX=/usr/bin/clang++ -DDB=build/compile_commands.json -DFILE=/abs/src/x.cc -P check_thread_safety.cmake
cmake_minimum_required(VERSION 3.25)
file(READ "${DB}" db)
string(JSON n LENGTH "${db}")
math(EXPR last "${n} - 1")
set(command "")
foreach(i RANGE ${last})
  string(JSON f GET "${db}" ${i} file)
  if(f STREQUAL FILE)
    string(JSON command GET "${db}" ${i} command)
    string(JSON directory GET "${db}" ${i} directory)
    break()
  endif()
endforeach()
if(command STREQUAL "")
  message(FATAL_ERROR "${FILE} is not in ${DB}")
endif()
separate_arguments(args UNIX_COMMAND "${command}")
list(POP_FRONT args)  # the compiler (ccache, if any, is not in the database)
# Keep the defines, include paths and the language standard; drop the output, the
# optimisation and the warnings meant for the build's own compiler. -isystem may take its path
# as the next word.
set(final "")
set(take_next FALSE)
foreach(a IN LISTS args)
  if(take_next)
    list(APPEND final "${a}")
    set(take_next FALSE)
  elseif(a STREQUAL "-isystem")
    list(APPEND final "${a}")
    set(take_next TRUE)
  elseif(a MATCHES "^-(D|I|std=)" OR a MATCHES "^-isystem.")
    list(APPEND final "${a}")
  endif()
endforeach()
execute_process(
  COMMAND "${CLANGXX}" ${final} -fsyntax-only -Wno-everything -Wthread-safety -Werror=thread-safety "${FILE}"
  WORKING_DIRECTORY "${directory}"
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "thread-safety check failed for ${FILE}")
endif()
