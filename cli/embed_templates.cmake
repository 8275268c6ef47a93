# Compiles cli/templates/** into the donkey binary: generates templates.c
# defining cli_template(name), name being the path under templates/
# ("project/main.c"). The installed binary needs no template files.
#
# Script mode: cmake -DTPL_DIR=... -DTPL_OUT=... -P embed_templates.cmake

if(CMAKE_SCRIPT_MODE_FILE)
  file(GLOB_RECURSE files RELATIVE ${TPL_DIR} ${TPL_DIR}/*)
  list(SORT files)
  set(text "/* Generated from cli/templates by cli/embed_templates.cmake. Do not edit. */\n")
  string(APPEND text "#include \"cli.h\"\n\n#include <string.h>\n\n")
  set(table "")
  set(i 0)
  foreach(f ${files})
    file(READ ${TPL_DIR}/${f} hex HEX)
    string(REPEAT "[0-9a-f]" 48 line)
    string(REGEX REPLACE "(${line})" "\\1\n" hex "${hex}")
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
    string(APPEND text "static const char tpl_${i}[] = {\n${hex}0};\n")
    string(APPEND table "    {\"${f}\", tpl_${i}},\n")
    math(EXPR i "${i} + 1")
  endforeach()
  string(APPEND text "\nstatic const struct {\n    const char *name;\n    const char *text;\n} templates[] = {\n${table}};\n\n")
  string(APPEND text "const char *cli_template(const char *name)\n{\n")
  string(APPEND text "    for (size_t i = 0; i < sizeof(templates) / sizeof(templates[0]); i++)\n")
  string(APPEND text "        if (strcmp(templates[i].name, name) == 0)\n            return templates[i].text;\n")
  string(APPEND text "    return NULL;\n}\n")
  file(WRITE ${TPL_OUT}.tmp "${text}")
  execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different ${TPL_OUT}.tmp ${TPL_OUT})
  file(REMOVE ${TPL_OUT}.tmp)
  return()
endif()
