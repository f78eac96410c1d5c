/*
 * actor_critic.c -- a plain C reference for avgreward's benchmark.
 *
 * The same work as the package's fused loop (avgreward/loop.py), written the
 * straightforward way: one serial loop, plain arrays, no SIMD intrinsics.
 * avgreward.bench compiles it (cc -std=c99 -O3 -march=native) and reports
 * "fused / C" side by side with the fused loop.
 *
 *   actor_critic softmax N SEED           softmax actor-critic, discrete swing-up
 *   actor_critic gaussian N SEED LAMBDA   Gaussian actor-critic, continuous swing-up;
 *                                         LAMBDA > 0: dense eligibility traces
 *   actor_critic tiles [BETA BETADOT]     the 32 active feature indices
 *   actor_critic step [BETA BETADOT TORQUE]   next state and reward
 *
 * tiles and step read one point per line from stdin when given no point.
 * A run prints one line of JSON: steps, seconds (the loop only), steps_per_s,
 * mean reward over the run and the final R-bar.
 *
 * What "the same work" means, per step (Sutton & Barto, section 13.6, in the
 * order of avgreward/loop.py):
 *   1. A ~ pi(.|S) from v(S)'s and the policy's sums over the 32 active features;
 *   2. the pendulum step (avgreward/envs/pendulum.py), the features of S';
 *   3. delta = R - Rbar + v(S') - v(S);
 *   4. Rbar += alpha_rbar delta; the critic; the actor.
 * Settings are those of SoftmaxActorCritic.pendulum_reference() and
 * GaussianActorCritic.pendulum_default() (avgreward/agents.py); the step
 * sizes are divided by the number of active features, as the package does.
 * The random numbers come from xoshiro256++, not numpy's PCG64: the runs are
 * statistically, not bitwise, those of the package.  Two more differences,
 * both the plain way: a sum over the active features is one running sum (the
 * package keeps four interleaved ones, for speed), and the rewards are summed
 * rather than stored (train() returns every reward and an R-bar trace).
 *
 * Compile with -std=c99: in ISO mode gcc does not contract a * b + c into a
 * fused multiply-add, so the arithmetic (features, dynamics) is the package's
 * to the bit, as numba compiles it without fastmath.
 */

#define _POSIX_C_SOURCE 199309L /* clock_gettime */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PI 3.14159265358979323846 /* rounds to numpy's np.pi */

/* ------------------------------------------------------------------------ */
/* The pendulum (avgreward/envs/pendulum.py)                                 */

#define DT 0.05
#define GRAVITY 9.8
#define MASS (1.0 / 3.0)
#define LENGTH 1.5
#define MAX_TORQUE 3.0
#define MAX_SPEED (2.0 * PI)

/* Python's float %, as numba computes it: the result has the sign of y. */
static double python_mod(double x, double y)
{
    double m = fmod(x, y);
    if (m != 0.0) {
        if ((y < 0.0) != (m < 0.0))
            m += y;
    } else {
        m = copysign(0.0, y);
    }
    return m;
}

/* One step of DT under torque (clipped to [-3, 3]); returns the reward -|beta'|. */
static double pendulum_step(double *beta, double *betadot, double torque)
{
    double a = torque;
    if (a < -MAX_TORQUE)
        a = -MAX_TORQUE;
    if (a > MAX_TORQUE)
        a = MAX_TORQUE;
    /* Semi-implicit Euler: the velocity first, then the angle with the new velocity. */
    double bd = *betadot
        + 0.75 * (a + MASS * LENGTH * GRAVITY * sin(*beta)) / (MASS * LENGTH * LENGTH) * DT;
    double b = *beta + bd * DT;
    /* Wrap into [-pi, pi); % only when the angle crossed the wrap, as the package. */
    double shifted = b + PI;
    if (!(shifted >= 0.0 && shifted < 2.0 * PI))
        shifted = python_mod(shifted, 2.0 * PI);
    b = shifted - PI;
    /* Too fast: restart hanging down, at rest. */
    if (bd < -MAX_SPEED || bd > MAX_SPEED) {
        b = -PI;
        bd = 0.0;
    }
    *beta = b;
    *betadot = bd;
    return -fabs(b);
}

/* ------------------------------------------------------------------------ */
/* Tile coding (avgreward/features.py, pendulum_tile_coder())                */
/*
 * 32 tilings of 8 x 8 tiles over (beta, betadot): beta wraps over [-pi, pi),
 * betadot is clipped to [-2 pi, 2 pi] and has 9 grid coordinates per tiling
 * (the offset tilings need one more).  Tiling t is displaced by (t, 3 t)
 * mod 32 thirty-seconds of a tile (tiles3's asymmetric offsets); its features
 * are t * 72 + 9 * c_beta + c_betadot.
 */

#define TILINGS 32
#define TILES 8
#define TILING_SIZE (TILES * (TILES + 1))
#define N_FEATURES (TILINGS * TILING_SIZE)

static void tile_indices(double beta, double betadot, int *idx)
{
    const double beta_low = -PI, beta_high = PI;
    const double betadot_low = -2.0 * PI, betadot_high = 2.0 * PI;
    const double beta_scale = TILES / (beta_high - beta_low);
    const double betadot_scale = TILES / (betadot_high - betadot_low);
    const double n = TILINGS;
    const double period = TILES * TILINGS;

    /* beta in units of 1/32 tile, wrapped into [0, 256) (NaN and inf land on 0). */
    double q0 = floor((beta - beta_low) * beta_scale * n);
    if (!(q0 >= 0.0 && q0 < period)) {
        q0 -= period * floor(q0 / period);
        if (!(q0 >= 0.0 && q0 < period))
            q0 = 0.0;
    }
    /* betadot clipped first ("not >=" also sends NaN to the low end). */
    if (!(betadot >= betadot_low))
        betadot = betadot_low;
    else if (betadot > betadot_high)
        betadot = betadot_high;
    double q1 = floor((betadot - betadot_low) * betadot_scale * n);

    long a0 = (long)q0, a1 = (long)q1;
    for (int t = 0; t < TILINGS; t++) {
        long c0 = ((a0 + t % TILINGS) / TILINGS) % TILES; /* wraps around */
        long c1 = (a1 + (3 * t) % TILINGS) / TILINGS;     /* 0 .. TILES */
        idx[t] = (int)(t * TILING_SIZE + c0 * (TILES + 1) + c1);
    }
}

/* ------------------------------------------------------------------------ */
/* Random numbers: xoshiro256++ (Blackman & Vigna), seeded by splitmix64     */

typedef struct {
    uint64_t s[4];
    int has_spare;
    double spare;
} rng_t;

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_seed(rng_t *rng, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&seed);
    rng->has_spare = 0;
    rng->spare = 0.0;
}

static uint64_t rng_next(rng_t *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[0] + s[3], 23) + s[0];
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1) from the top 53 bits. */
static double uniform(rng_t *rng)
{
    return (double)(rng_next(rng) >> 11) * 0x1.0p-53;
}

/* Standard normal: Marsaglia's polar method, two at a time. */
static double normal(rng_t *rng)
{
    if (rng->has_spare) {
        rng->has_spare = 0;
        return rng->spare;
    }
    double u, v, s;
    do {
        u = 2.0 * uniform(rng) - 1.0;
        v = 2.0 * uniform(rng) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    double m = sqrt(-2.0 * log(s) / s);
    rng->spare = v * m;
    rng->has_spare = 1;
    return u * m;
}

/* ------------------------------------------------------------------------ */
/* Runs                                                                      */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *zeros(size_t n)
{
    void *p = calloc(n, sizeof(double));
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

typedef struct {
    long steps; /* completed: fewer than asked if the TD error or the policy became non-finite */
    double seconds, reward_sum, rbar;
} result_t;

/* SoftmaxActorCritic.pendulum_reference(): one-step (lambda = 0). */
#define SOFTMAX_ALPHA_W 2.0
#define SOFTMAX_ALPHA_THETA 0.25
#define SOFTMAX_ALPHA_RBAR (1.0 / 64.0)
#define SOFTMAX_TAU 1.0
#define N_ACTIONS 3 /* torques -1, 0, +1 */

static result_t run_softmax(long n, uint64_t seed)
{
    double *w = zeros(N_FEATURES);
    double(*theta)[N_ACTIONS] = zeros(N_FEATURES * N_ACTIONS); /* theta[feature][action] */
    const double step_w = SOFTMAX_ALPHA_W / TILINGS;
    const double step_theta = SOFTMAX_ALPHA_THETA / TILINGS;
    int idx[TILINGS], idx_next[TILINGS];
    double beta = -PI, betadot = 0.0;
    double rbar = 0.0, reward_sum = 0.0;
    rng_t rng;
    rng_seed(&rng, seed);
    tile_indices(beta, betadot, idx);

    long t;
    double started = now();
    for (t = 0; t < n; t++) {
        /* v(S) and the preferences h(S, a) */
        double v = 0.0, h[N_ACTIONS] = {0.0};
        for (int j = 0; j < TILINGS; j++) {
            int i = idx[j];
            v += w[i];
            for (int a = 0; a < N_ACTIONS; a++)
                h[a] += theta[i][a];
        }
        /* pi(.|S) = softmax(h / tau), the largest preference subtracted first */
        double top = h[0];
        for (int a = 1; a < N_ACTIONS; a++)
            if (h[a] > top)
                top = h[a];
        double p[N_ACTIONS], total = 0.0;
        for (int a = 0; a < N_ACTIONS; a++) {
            p[a] = exp((h[a] - top) / SOFTMAX_TAU);
            total += p[a];
        }
        for (int a = 0; a < N_ACTIONS; a++)
            p[a] /= total;
        /* A ~ pi(.|S) by inverse CDF */
        double u = uniform(&rng);
        int action = N_ACTIONS - 1;
        double cumulative = 0.0;
        for (int a = 0; a < N_ACTIONS - 1; a++) {
            cumulative += p[a];
            if (u < cumulative) {
                action = a;
                break;
            }
        }
        /* Take A, observe S' and R */
        double reward = pendulum_step(&beta, &betadot, action - 1.0);
        tile_indices(beta, betadot, idx_next);
        double v_next = 0.0;
        for (int j = 0; j < TILINGS; j++)
            v_next += w[idx_next[j]];

        double delta = reward - rbar + v_next - v;
        if (!isfinite(delta))
            break;
        rbar += SOFTMAX_ALPHA_RBAR * delta;
        /* w += alpha_w delta x(S); theta_b += alpha_theta delta (1[A = b] - pi(b|S)) / tau x(S) */
        double g[N_ACTIONS];
        for (int a = 0; a < N_ACTIONS; a++)
            g[a] = step_theta * delta * ((a == action ? 1.0 : 0.0) - p[a]) / SOFTMAX_TAU;
        for (int j = 0; j < TILINGS; j++) {
            int i = idx[j];
            w[i] += step_w * delta;
            for (int a = 0; a < N_ACTIONS; a++)
                theta[i][a] += g[a];
        }
        reward_sum += reward;
        memcpy(idx, idx_next, sizeof idx);
    }
    result_t r = {t, now() - started, reward_sum, rbar};
    free(w);
    free(theta);
    return r;
}

/* GaussianActorCritic.pendulum_default(): sigma = sigma_min + exp(theta_sigma . x),
   mean gradient scaled by sigma^2. */
#define GAUSSIAN_ALPHA_W 1.0
#define GAUSSIAN_ALPHA_MU (1.0 / 16.0)
#define GAUSSIAN_ALPHA_SIGMA (1.0 / 64.0)
#define GAUSSIAN_ALPHA_RBAR (1.0 / 64.0)
#define GAUSSIAN_SIGMA_MIN 0.0
#define GAUSSIAN_SCALE_MEAN_GRADIENT 1

static result_t run_gaussian(long n, uint64_t seed, double lambda)
{
    double *w = zeros(N_FEATURES);
    double(*theta)[2] = zeros(2 * N_FEATURES); /* theta[feature] = (mu, sigma) weights */
    double *z_w = zeros(N_FEATURES);           /* eligibility traces (lambda > 0) */
    double(*z_theta)[2] = zeros(2 * N_FEATURES);
    const double step_w = GAUSSIAN_ALPHA_W / TILINGS;
    const double step_mu = GAUSSIAN_ALPHA_MU / TILINGS;
    const double step_sigma = GAUSSIAN_ALPHA_SIGMA / TILINGS;
    int idx[TILINGS], idx_next[TILINGS];
    double beta = -PI, betadot = 0.0;
    double rbar = 0.0, reward_sum = 0.0;
    rng_t rng;
    rng_seed(&rng, seed);
    tile_indices(beta, betadot, idx);

    long t;
    double started = now();
    for (t = 0; t < n; t++) {
        /* v(S), mu(S) and h_sigma(S) */
        double v = 0.0, mu = 0.0, h_sigma = 0.0;
        for (int j = 0; j < TILINGS; j++) {
            int i = idx[j];
            v += w[i];
            mu += theta[i][0];
            h_sigma += theta[i][1];
        }
        double e = exp(h_sigma);
        double sigma = GAUSSIAN_SIGMA_MIN + e;
        if (!(isfinite(mu) && isfinite(sigma) && sigma > 0.0))
            break;
        /* A ~ N(mu, sigma^2); the environment clips it, the score uses it as drawn */
        double action = mu + sigma * normal(&rng);
        double reward = pendulum_step(&beta, &betadot, action);
        tile_indices(beta, betadot, idx_next);
        double v_next = 0.0;
        for (int j = 0; j < TILINGS; j++)
            v_next += w[idx_next[j]];

        double delta = reward - rbar + v_next - v;
        if (!isfinite(delta))
            break;
        rbar += GAUSSIAN_ALPHA_RBAR * delta;
        /* The score's coefficients of x(S) */
        double diff = action - mu, var = sigma * sigma;
        double g_mu = GAUSSIAN_SCALE_MEAN_GRADIENT ? diff : diff / var;
        double g_sigma = (diff * diff / var - 1.0) * (e / sigma);
        if (lambda == 0.0) {
            for (int j = 0; j < TILINGS; j++) {
                int i = idx[j];
                w[i] += step_w * delta;
                theta[i][0] += step_mu * delta * g_mu;
                theta[i][1] += step_sigma * delta * g_sigma;
            }
        } else {
            /* z <- lambda z + gradient, then weights += alpha delta z, over all features */
            for (int i = 0; i < N_FEATURES; i++) {
                z_w[i] *= lambda;
                z_theta[i][0] *= lambda;
                z_theta[i][1] *= lambda;
            }
            for (int j = 0; j < TILINGS; j++) {
                int i = idx[j];
                z_w[i] += 1.0;
                z_theta[i][0] += g_mu;
                z_theta[i][1] += g_sigma;
            }
            for (int i = 0; i < N_FEATURES; i++) {
                w[i] += step_w * delta * z_w[i];
                theta[i][0] += step_mu * delta * z_theta[i][0];
                theta[i][1] += step_sigma * delta * z_theta[i][1];
            }
        }
        reward_sum += reward;
        memcpy(idx, idx_next, sizeof idx);
    }
    result_t r = {t, now() - started, reward_sum, rbar};
    free(w);
    free(theta);
    free(z_w);
    free(z_theta);
    return r;
}

/* ------------------------------------------------------------------------ */
/* Command line                                                              */

static void usage(void)
{
    fprintf(stderr,
            "usage: actor_critic softmax N SEED\n"
            "       actor_critic gaussian N SEED LAMBDA\n"
            "       actor_critic tiles [BETA BETADOT]      (else one point per line on stdin)\n"
            "       actor_critic step [BETA BETADOT TORQUE] (else one per line on stdin)\n");
    exit(2);
}

static double number(const char *text)
{
    char *end;
    double x = strtod(text, &end);
    if (end == text || *end != '\0') {
        fprintf(stderr, "not a number: %s\n", text);
        exit(2);
    }
    return x;
}

static long count(const char *text)
{
    double x = number(text);
    if (!(x >= 0.0 && x <= 1e18) || x != floor(x)) {
        fprintf(stderr, "not a count: %s\n", text);
        exit(2);
    }
    return (long)x;
}

static void print_tiles(double beta, double betadot)
{
    int idx[TILINGS];
    tile_indices(beta, betadot, idx);
    for (int t = 0; t < TILINGS; t++)
        printf(t ? " %d" : "%d", idx[t]);
    printf("\n");
}

static void print_step(double beta, double betadot, double torque)
{
    double reward = pendulum_step(&beta, &betadot, torque);
    printf("%.17g %.17g %.17g\n", beta, betadot, reward);
}

/* One line of JSON; "settings" are the agent's, by the package's names (for checks). */
static void print_run(const char *mode, const char *settings, long asked, uint64_t seed,
                      result_t r)
{
    printf("{\"case\": \"%s\", \"settings\": {%s}, \"seed\": %llu, \"steps_asked\": %ld, "
           "\"steps\": %ld, \"seconds\": %.9f, \"steps_per_s\": %.6e, \"ns_per_step\": %.4f, "
           "\"mean_reward\": %.17g, \"rbar\": %.17g}\n",
           mode, settings, (unsigned long long)seed, asked, r.steps, r.seconds,
           r.seconds > 0.0 ? r.steps / r.seconds : 0.0, /* no inf or nan in JSON */
           1e9 * r.seconds / (r.steps > 0 ? r.steps : 1),
           r.steps > 0 ? r.reward_sum / r.steps : 0.0, r.rbar);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *mode = argv[1];
    if (strcmp(mode, "softmax") == 0 && argc == 4) {
        long n = count(argv[2]);
        uint64_t seed = (uint64_t)count(argv[3]);
        char settings[300];
        snprintf(settings, sizeof settings,
                 "\"alpha_w\": %.17g, \"alpha_theta\": %.17g, \"alpha_rbar\": %.17g, "
                 "\"tau\": %.17g, \"lambda_w\": 0.0, \"lambda_theta\": 0.0",
                 SOFTMAX_ALPHA_W, SOFTMAX_ALPHA_THETA, SOFTMAX_ALPHA_RBAR, SOFTMAX_TAU);
        print_run(mode, settings, n, seed, run_softmax(n, seed));
    } else if (strcmp(mode, "gaussian") == 0 && argc == 5) {
        long n = count(argv[2]);
        uint64_t seed = (uint64_t)count(argv[3]);
        double lambda = number(argv[4]);
        if (!(lambda >= 0.0 && lambda <= 1.0)) {
            fprintf(stderr, "LAMBDA must lie in [0, 1]\n");
            return 2;
        }
        char settings[400];
        snprintf(settings, sizeof settings,
                 "\"alpha_w\": %.17g, \"alpha_mu\": %.17g, \"alpha_sigma\": %.17g, "
                 "\"alpha_rbar\": %.17g, \"lambda_w\": %.17g, \"lambda_theta\": %.17g, "
                 "\"scale_mean_gradient\": %s, \"sigma_min\": %.17g",
                 GAUSSIAN_ALPHA_W, GAUSSIAN_ALPHA_MU, GAUSSIAN_ALPHA_SIGMA, GAUSSIAN_ALPHA_RBAR,
                 lambda, lambda, GAUSSIAN_SCALE_MEAN_GRADIENT ? "true" : "false",
                 GAUSSIAN_SIGMA_MIN);
        print_run(mode, settings, n, seed, run_gaussian(n, seed, lambda));
    } else if (strcmp(mode, "tiles") == 0 && argc == 4) {
        print_tiles(number(argv[2]), number(argv[3]));
    } else if (strcmp(mode, "tiles") == 0 && argc == 2) {
        double beta, betadot;
        while (scanf("%lf %lf", &beta, &betadot) == 2)
            print_tiles(beta, betadot);
    } else if (strcmp(mode, "step") == 0 && argc == 5) {
        print_step(number(argv[2]), number(argv[3]), number(argv[4]));
    } else if (strcmp(mode, "step") == 0 && argc == 2) {
        double beta, betadot, torque;
        while (scanf("%lf %lf %lf", &beta, &betadot, &torque) == 3)
            print_step(beta, betadot, torque);
    } else {
        usage();
    }
    return 0;
}
