/* orphans N: makes N double-forked orphans (each grandchild exits at once, so it becomes a
 * zombie that only PID 1 of the pid namespace can reap), then waits until no process but
 * PID 1 and itself is left in the namespace (/proc must be the namespace's own).
 * Prints "SECONDS_TOTAL SECONDS_FORKING": from the first fork until the last zombie is
 * gone, and the part of it spent forking. Part of bench/run.sh (reaping). */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static int others(pid_t self) {
  DIR *d = opendir("/proc");
  if (!d) { perror("opendir /proc"); exit(2); }
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    char *end;
    long pid = strtol(e->d_name, &end, 10);
    if (*end || pid <= 0) continue;
    if (pid != 1 && pid != self) n++;
  }
  closedir(d);
  return n;
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 20000;
  pid_t self = getpid();
  if (self == 1) { fprintf(stderr, "orphans: must not be PID 1\n"); return 2; }
  double t0 = now();
  for (int i = 0; i < n; i++) {
    pid_t c = fork();
    if (c < 0) { perror("fork"); usleep(1000); i--; continue; }
    if (c == 0) {
      if (fork() < 0) _exit(1);
      _exit(0); /* the grandchild, too, exits at once: an orphan zombie for PID 1 */
    }
    while (waitpid(c, NULL, 0) < 0) {}
  }
  double t1 = now();
  while (others(self) > 0) usleep(100);
  double t2 = now();
  printf("%.6f %.6f\n", t2 - t0, t1 - t0);
  return 0;
}
