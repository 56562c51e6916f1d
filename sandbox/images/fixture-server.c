/*
 * The process every fixture image runs (sandbox/images.ts), so a sandbox node runs real containers.
 * Its image config says how this version behaves, through FIXTURE_MODE:
 *   ready (default)  serves HTTP on $PORT (8080): /ready and /healthz answer 200;
 *   unready          serves, but /ready answers 503 for ever (the pod never becomes ready);
 *   slow             /ready answers 503 for the first $FIXTURE_READY_AFTER seconds (60), then 200;
 *   crash            exits 1 at once (the container restarts: CrashLoopBackOff).
 * With arguments (a Job's `create`, `patch`, `migrate`) it prints them and exits 0: a Job completes.
 * Linked statically: the image is this one file.
 */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; _exit(0); }

static void answer(int fd, int ready) {
  char req[1024];
  ssize_t n = read(fd, req, sizeof req - 1);
  if (n <= 0) return;
  req[n] = 0;
  int readiness = strncmp(req, "GET /ready", 10) == 0;
  int ok = !readiness || ready;
  const char *body = ok ? "ok\n" : "not ready\n";
  char res[256];
  int len = snprintf(res, sizeof res, "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     ok ? "200 OK" : "503 Service Unavailable", strlen(body), body);
  if (write(fd, res, (size_t)len) < 0) return;
}

int main(int argc, char **argv) {
  const char *image = getenv("FIXTURE_IMAGE") ? getenv("FIXTURE_IMAGE") : "fixture";
  if (argc > 1) {
    printf("%s: %s done\n", image, argv[1]);
    return 0;
  }
  const char *mode = getenv("FIXTURE_MODE") ? getenv("FIXTURE_MODE") : "ready";
  if (strcmp(mode, "crash") == 0) {
    fprintf(stderr, "%s: this fixture version crashes at start\n", image);
    return 1;
  }
  signal(SIGTERM, stop);
  signal(SIGINT, stop);
  signal(SIGPIPE, SIG_IGN);
  int port = getenv("PORT") ? atoi(getenv("PORT")) : 8080;
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  if (s < 0 || bind(s, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(s, 16) < 0) {
    perror("listen");
    return 2;
  }
  printf("%s: serving on :%d (%s)\n", image, port, mode);
  fflush(stdout);
  time_t ready_at = time(NULL);
  if (strcmp(mode, "slow") == 0)
    ready_at += getenv("FIXTURE_READY_AFTER") ? atoi(getenv("FIXTURE_READY_AFTER")) : 60;
  for (;;) {
    int fd = accept(s, NULL, NULL);
    if (fd < 0) continue;
    answer(fd, strcmp(mode, "unready") != 0 && time(NULL) >= ready_at);
    close(fd);
  }
}
