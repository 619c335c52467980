// Allocates a known amount, then replaces itself with another program, for
// test_end_to_end.py: its log never gets a footer.
//
//   exec_program PROGRAM   5 mallocs and 2 frees, then execv(PROGRAM); PROGRAM gets no
//                          arguments. The 3 live blocks are lost with the process image.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    void* blocks[5];
    for (int i = 0; i < 5; ++i) {
        blocks[i] = malloc(700 + (size_t)i);
        if (!blocks[i]) return 3;
        memset(blocks[i], 7, 700);
    }
    free(blocks[0]);
    free(blocks[1]);
    char* args[] = {argv[1], NULL};
    execv(argv[1], args);
    return 4;  // exec failed
}
