/* Check that tracec_add_module(lif2 ...) embedded a real IREE module in C data.
 *
 * The bytes come from the generated header lif2.h (iree-c-embed-data): lif2_create()
 * returns a table of contents whose entry [0] is the .vmfb and entry [1] is {NULL}.
 * A .vmfb is a zip-style container: it begins with "PK\3\4" and the module's
 * flatbuffer (file identifier "IREE") follows within the first few hundred bytes.
 * tracec stores its manifest as the reflection attribute "tracec.manifest".
 */
#include <stdio.h>
#include <string.h>

#include "lif2.h"

static int contains(const char* data, size_t size, const char* needle) {
  size_t n = strlen(needle);
  for (size_t i = 0; i + n <= size; ++i) {
    if (memcmp(data + i, needle, n) == 0) return 1;
  }
  return 0;
}

int main(void) {
  const iree_file_toc_t* toc = lif2_create();
  int failures = 0;
#define CHECK(cond, ...)                   \
  do {                                     \
    if (!(cond)) {                         \
      fprintf(stderr, "FAIL: " __VA_ARGS__); \
      fputc('\n', stderr);                 \
      ++failures;                          \
    }                                      \
  } while (0)

  CHECK(toc != NULL && toc[0].data != NULL, "lif2_create() has no entry");
  if (failures) return 1;
  CHECK(lif2_size() == 1, "expected 1 embedded file, got %zu", (size_t)lif2_size());
  CHECK(toc[1].name == NULL && toc[1].data == NULL, "table of contents not terminated");
  CHECK(strcmp(toc[0].name, "lif2.vmfb") == 0, "entry name is '%s', expected 'lif2.vmfb'",
        toc[0].name);
  CHECK(toc[0].size > 1024, "embedded module is only %zu bytes", toc[0].size);
  if (toc[0].size >= 4) {
    CHECK(memcmp(toc[0].data, "PK\x03\x04", 4) == 0, "data does not start with PK\\x03\\x04");
  }
  size_t head = toc[0].size < 256 ? toc[0].size : 256;
  CHECK(contains(toc[0].data, head, "IREE"), "no \"IREE\" flatbuffer identifier in the first 256 bytes");
  CHECK(contains(toc[0].data, toc[0].size, "tracec.manifest"), "no tracec.manifest in the module");
  CHECK(((size_t)toc[0].data % 16) == 0, "embedded data is not 16-byte aligned");

  if (failures) return 1;
  printf("lif2.vmfb embedded: %zu bytes, IREE module with a tracec manifest\n", toc[0].size);
  return 0;
}
