// Captures a real glibc malloc_info(0) XML plus the mallinfo2() figures taken
// immediately before it, with no allocation in between (stream buffer is static).
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define NT 5
static void* work(void* a) {
  long id = (long)a; void* p[4000];
  for (int i = 0; i < 4000; i++) { size_t s = 16 + ((i * 7919 + id * 31) % 3000); p[i] = malloc(s); memset(p[i], 1, s); }
  for (int i = 0; i < 4000; i += 2) free(p[i]);
  return NULL; // keep the odd ones: leaked on purpose, keeps arenas fragmented
}
static char buf[1 << 20];
int main(int argc, char** argv) {
  pthread_t t[NT];
  for (long i = 0; i < NT; i++) pthread_create(&t[i], 0, work, (void*)i);
  for (int i = 0; i < NT; i++) pthread_join(t[i], 0);
  work((void*)99);
  void* big = malloc(300 << 10); memset(big, 1, 300 << 10); // one mmapped chunk
  FILE* f = fopen(argv[1], "w"); setvbuf(f, buf, _IOFBF, sizeof buf);
  struct mallinfo2 m = mallinfo2();
  malloc_info(0, f);
  fclose(f);
  FILE* j = fopen(argv[2], "w");
  fprintf(j, "{\"arena\": %zu, \"ordblks\": %zu, \"smblks\": %zu, \"hblks\": %zu, \"hblkhd\": %zu, \"usmblks\": %zu, \"fsmblks\": %zu, \"uordblks\": %zu, \"fordblks\": %zu, \"keepcost\": %zu}\n",
    m.arena, m.ordblks, m.smblks, m.hblks, m.hblkhd, m.usmblks, m.fsmblks, m.uordblks, m.fordblks, m.keepcost);
  fclose(j);
  return big == 0;
}
