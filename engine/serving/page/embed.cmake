# Writes OUTPUT, a C++ source that defines kcqrs::engine::UiPageHtml() as
# the bytes of INPUT, exactly (no trailing NUL, no re-encoding), so that the
# page is a file to edit and the binary still needs no files at run time.
# Run at build time: cmake -DINPUT=index.html -DOUTPUT=ui_page_html.cc -P embed.cmake
if(NOT INPUT OR NOT OUTPUT)
  message(FATAL_ERROR "embed.cmake: pass -DINPUT=<file> -DOUTPUT=<file.cc>")
endif()
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_length)
if(hex_length EQUAL 0)
  message(FATAL_ERROR "embed.cmake: ${INPUT} is empty; the page cannot be")
endif()
math(EXPR size "${hex_length} / 2")
# 0xNN, per byte; 16 to a line.
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n    " bytes "${bytes}")
file(WRITE "${OUTPUT}"
"// Generated at build time from engine/serving/page/index.html by
// page/embed.cmake: edit that file, not this one.
#include \"engine/serving/ui_page.h\"

namespace kcqrs::engine {
namespace {

constexpr unsigned char kPage[${size}] = {
    ${bytes}
};

}  // namespace

std::string_view UiPageHtml() {
  return std::string_view(reinterpret_cast<const char*>(kPage), sizeof kPage);
}

}  // namespace kcqrs::engine
")
