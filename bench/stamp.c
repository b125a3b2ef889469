/* stamp FILE: appends "START END\n" (CLOCK_MONOTONIC seconds) to FILE and exits 0: START
 * as main() begins, END just before exit. Successive lines of a service restarted at once
 * give the time from one exit to the next process running. Part of bench/run.sh (restart). */
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  if (argc < 2) return 2;
  int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return 1;
  char buf[96];
  clock_gettime(CLOCK_MONOTONIC, &b);
  int len = snprintf(buf, sizeof buf, "%ld.%09ld %ld.%09ld\n", (long)a.tv_sec, a.tv_nsec,
                     (long)b.tv_sec, b.tv_nsec);
  if (write(fd, buf, len) != len) return 1;
  return 0;
}
