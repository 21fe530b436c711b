/* Greedy decoding with llama.cpp's C API on given token ids, for benchmarks/llama_cpp.py.
 *
 * llama.cpp's own programs take a text prompt and print text; comparing with our generate() needs token ids in and
 * out, so this reads the prompt as ids, takes the argmax of the logits at every step (no sampler, no stop token:
 * exactly N_NEW tokens, as generate(min_new_tokens=N_NEW) gives when the model has no EOS) and prints one JSON line:
 *   {"tokens": [...], "seconds": S}   S: the prompt's forward pass plus every decoding step, model load excluded.
 * With --tokenize TEXT it prints llama.cpp's tokenization of TEXT instead: {"tokens": [...]}.
 *
 *   llama_cpp_greedy MODEL.gguf N_NEW THREADS ID...
 *   llama_cpp_greedy MODEL.gguf --tokenize TEXT
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime and CLOCK_MONOTONIC under -std=c11 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llama.h"

static void quiet(enum ggml_log_level level, const char *text, void *user_data) {
    (void)user_data;
    if (level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void print_tokens(const llama_token *tokens, int n) {
    printf("{\"tokens\": [");
    for (int i = 0; i < n; i++) printf(i ? ", %d" : "%d", tokens[i]);
    printf("]");
}

static int tokenize(const struct llama_vocab *vocab, const char *text) {
    int len = (int)strlen(text);
    /* add_special=false: no BOS (our tokenizer adds none); parse_special=true: "<|endoftext|>" is one token. */
    int n = -llama_tokenize(vocab, text, len, NULL, 0, false, true);
    llama_token *tokens = malloc(sizeof(llama_token) * (n > 0 ? n : 1));
    if (llama_tokenize(vocab, text, len, tokens, n, false, true) < 0) {
        fprintf(stderr, "llama_tokenize failed on the text\n");
        return 1;
    }
    print_tokens(tokens, n);
    printf("}\n");
    free(tokens);
    return 0;
}

int main(int argc, char **argv) {
    int tokenize_only = argc == 4 && strcmp(argv[2], "--tokenize") == 0;
    if (argc < 5 && !tokenize_only) {
        fprintf(stderr, "usage: %s MODEL.gguf N_NEW THREADS ID... | %s MODEL.gguf --tokenize TEXT\n", argv[0],
                argv[0]);
        return 2;
    }
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params model_params = llama_model_default_params();
    /* LLAMA_NO_EXTRA_BUFTS=1: no weight repacking (extra buffer types, such as the AMX one), whose q8_0 path
       crashes in this llama.cpp on an Intel Xeon with AMX (benchmarks/RESULTS.md) */
    model_params.use_extra_bufts = getenv("LLAMA_NO_EXTRA_BUFTS") == NULL;
    struct llama_model *model = llama_model_load_from_file(argv[1], model_params);
    if (model == NULL) {
        fprintf(stderr, "cannot load %s\n", argv[1]);
        return 1;
    }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    if (tokenize_only) return tokenize(vocab, argv[3]);

    int n_new = atoi(argv[2]), threads = atoi(argv[3]), n_prompt = argc - 4;
    int n_vocab = llama_vocab_n_tokens(vocab);
    llama_token *tokens = malloc(sizeof(llama_token) * (n_prompt + n_new));
    for (int i = 0; i < n_prompt; i++) tokens[i] = atoi(argv[4 + i]);

    struct llama_context_params params = llama_context_default_params();
    params.n_ctx = n_prompt + n_new;
    params.n_batch = n_prompt;
    params.n_threads = params.n_threads_batch = threads;
    struct llama_context *ctx = llama_init_from_model(model, params);
    if (ctx == NULL) {
        fprintf(stderr, "cannot create a context of %d tokens\n", n_prompt + n_new);
        return 1;
    }

    double start = now();
    struct llama_batch batch = llama_batch_get_one(tokens, n_prompt);
    for (int step = 0; step < n_new; step++) {
        if (llama_decode(ctx, batch) != 0) {
            fprintf(stderr, "llama_decode failed at step %d\n", step);
            return 1;
        }
        const float *logits = llama_get_logits_ith(ctx, -1);
        int best = 0;
        for (int v = 1; v < n_vocab; v++)
            if (logits[v] > logits[best]) best = v;  /* the first maximum, as torch.argmax */
        tokens[n_prompt + step] = best;
        batch = llama_batch_get_one(&tokens[n_prompt + step], 1);
    }
    double seconds = now() - start;

    print_tokens(tokens + n_prompt, n_new);
    printf(", \"seconds\": %.6f}\n", seconds);
    llama_free(ctx);
    llama_model_free(model);
    free(tokens);
    return 0;
}
