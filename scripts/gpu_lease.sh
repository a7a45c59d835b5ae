#!/usr/bin/env bash
# One GPU lease, four chained calls on a warm nvidia-h200 (state stays on its disk under runs/):
#   1. the paper's 55.7M network trained alone for 15 epochs (scripts/gpu_paper_arch.py train);
#   2. the GPU speed benchmark on the idle GPU (benchmarks/gpu.py -> gpu.json), then, side by side,
#      the network's evaluation (scripts/gpu_paper_arch.py evaluate -> paper_arch_mnist.csv), the plan
#      against its peers on that network, and on the FashionMNIST DiT (scripts/gpu_plan_eval.py ->
#      plan_<model>.csv, plan_choices_<model>_<budget>.csv);
#   3. the same evaluations go on (done rows are skipped);
#   4. the Inception file is complete: the Inception FIDs of every kept sample set are added.
# Both evaluations run every cell through the sweep engine (fmq_theory.harness.engine.run_cells) and keep
# their samples (uint8) on the machine's disk, so call 4 adds the Inception FIDs without sampling again.
#
# What travels (git-ignored, under .carry/; 64 MiB per call with the 33.2 MB tree, so ~33.9 MB of carry):
#   harness_data/  MNIST train+test (11.5 MB)     plan_test/    MNIST + FashionMNIST test splits (6.1 MB)
#   wheels_peers/  site.tgz: hqq, gguf, torchao, bitsandbytes (5.7 MB)
#   wheels_dask/   dask + distributed wheels (5.4 MB; scripts/gpu_pydeps.sh says how they were made)
#   inc{1..6}/     the Inception TorchScript file (87,335,461 bytes, SHA-256 below) cut in six parts of
#     P = 14,555,911 bytes (the last 5 fewer): part i = tail -c +$(( (i-1)*P + 1 )) F | head -c $P.
#     (Four parts, the largest 33.5 MB, were used until 2026-12-02: with the 33.3 MB tree the 33.5 MB part
#     was refused as over 64 MiB as the tool counts it; no part is now over 14.6 MB.)
# The FashionMNIST lease (issue 13; the Inception parts ride in the later calls since the data fills call 1;
# it ran on 2026-12-02 with the old four-part cut; with the six-part cut it is):
#   run("DATASET=fashion_mnist bash scripts/gpu_lease.sh 1", carry=[".carry/fmnist_train", ".carry/wheels_dask"], timeout_s=600)
#   run("DATASET=fashion_mnist JOBS=paper NO_BENCH=1 S2=420 H2=465 bash scripts/gpu_lease.sh 2", carry=[".carry/plan_test", ".carry/inc1"])
#   run("DATASET=fashion_mnist JOBS=paper S3=... H3=... bash scripts/gpu_lease.sh 3", carry=[".carry/inc2", ".carry/inc3"])
#   run("DATASET=fashion_mnist JOBS=paper S3=... H3=... bash scripts/gpu_lease.sh 3", carry=[".carry/inc4", ".carry/inc5"])
#   run("DATASET=fashion_mnist JOBS=paper S4=... H4=... bash scripts/gpu_lease.sh 4", carry=[".carry/inc6"])  (Inception complete)
#   fmnist_train/  FashionMNIST train split only (26.5 MB, the manifest of fmnist_data): with the dask wheels the
#                  engine imports, 65.2 of the 67.1 MB a call carries; call 2 adds the test split from plan_test/
# Before a lease, on a fresh checkout: `bash scripts/gpu_carry.sh` builds every .carry folder named below.
# The FashionMNIST lease can also plan its network (issue 12's 55.7M rows): JOBS="paper plan" in calls 2-4
# runs scripts/gpu_plan_eval.py on model paper_arch_fashion_mnist (CPU dry run on a width-8 copy: 3 rows).
# Calls of the MNIST lease (each right after the previous one returns; ~1,700 s of device time in all):
#   run("bash scripts/gpu_lease.sh 1", carry=[".carry/harness_data", ".carry/wheels_dask", ".carry/inc1"], timeout_s=600)
#   run("bash scripts/gpu_lease.sh 2", carry=[".carry/wheels_peers", ".carry/plan_test", ".carry/inc2"], timeout_s=600)
#   run("bash scripts/gpu_lease.sh 3", carry=[".carry/inc3", ".carry/inc4"], timeout_s=600)
#   run("bash scripts/gpu_lease.sh 4", carry=[".carry/inc5", ".carry/inc6"], timeout_s=600)
# Training past one command's 10 minutes (15 epochs at ~1,300 images/s is ~12 min): call 1 trains for TRAIN_MIN,
# then the next call starts with `RESUME=1 TRAIN_MIN=3 bash scripts/gpu_lease.sh 1 && bash scripts/gpu_lease.sh 2`.
# PROBE=1 in call 1 times both memory formats first (channels_last trained at 1,272-1,308 images/s in the last
# two leases, contiguous at 1,672 in an earlier one; the evaluation's 5k cells ran ~45 s in channels_last).
# PLAN_BPP (1): the paper network's sensitivity pass, probe batches per vectorized pass (4: 9.1 s against the loop's 15.0 s
# and 55 GiB against 66 in benchmarks/gpu_h200_sensitivity.json).
# Knobs (environment): BENCH_ONLY (benchmarks/gpu.py --only; e.g. "sensitivity", ~100 s: issue 18 target 4 alone
# on the idle GPU) and BENCH_S (its timeout, 200), PAPER_BUDGETS (2,3,4), PAPER_PEERS, PAPER_SAMPLES (2000), PAPER_PAIRS (500) and MATCH_PEER for JOBS=plan; DATASET (mnist), MEMFMT (both stages' memory format; else the probe's faster, else contiguous), RESUME, PROBE, JOBS ("paper small plan": the evaluations run side by side), BITS ("2 3 4 8"),
# DETERMINISTIC (set: train with deterministic kernels only, gpu_paper_arch.py train --deterministic),
# KINDS ("fp cell nfe": the paper-network rows evaluated), NFE_SAMPLES (5000), FID_FIRST (set: the 50k-sample FIDs before the NFE check), EPOCHS (15), TRAIN_MIN (9.4, a cap), TRAIN_BATCH (256: batch 512 measured slower), SAMPLES (5000), PAPER_SAMPLES (5000),
# FID_SAMPLES (50000, the paper's protocol; 0 leaves those rows out), S2/S3/S4 (seconds after which no new cell starts: 400, 200,
# 250), H2/H3/H4 (hard stops of the evaluations, seconds into the call: 555, 300, 330); for the small models' plan
# evaluation (JOBS=small): SMALL_MODELS ("dit"; e.g. "dit mnist fashion_mnist"), REPLAN (set: their committed plan
# rows are dropped and measured again), PEER_FAMILIES ("all"), PLAN_FAMILIES (the library's default families),
# MATCH_PEER (a peer family: the plan also at that peer's b2-b4 bits per weight); KEEP_ROWS (a committed plan table of
# the paper network whose rows are done rows when the network trained here is theirs) and NO_PLAN (set: peers only).
# The plan re-measured on the three small models after HQQ's grids became its third family (issue 12, tenth
# period; no training, so call 1 is skipped; no Inception: the UNets' plan rows never had it):
#   run("JOBS=small SMALL_MODELS='dit mnist fashion_mnist' REPLAN=1 PEER_FAMILIES=hqq:g128 MATCH_PEER=hqq:g128 NO_BENCH=1 S2=480 H2=570 bash scripts/gpu_lease.sh 2", carry=[".carry/plan_test", ".carry/wheels_peers", ".carry/wheels_dask"])
#   run("JOBS=small SMALL_MODELS='dit mnist fashion_mnist' PEER_FAMILIES=hqq:g128 MATCH_PEER=hqq:g128 S3=480 H3=570 bash scripts/gpu_lease.sh 3")
# As they ran that period (H200): (1) the line above, 377 s; (2) PEER_FAMILIES=hqq:g64 MATCH_PEER=hqq:g64 without
# REPLAN, 327 s; (3) every variant measured (scripts/gpu_plan_variants.py -> results/plan_variants_gpu.json; MNIST cut off):
#   run("JOBS=variants NO_BENCH=1 H2=560 VARIANTS='--models dit,fashion_mnist,mnist --budgets 2,3 --match-peer hqq:g128' bash scripts/gpu_lease.sh 2")
# Eleventh period, after the variants' ranking became the shift (results/plan_<model>.csv re-measured; the g64-matched
# plan rows were dropped by REPLAN and not measured again):
#   run("JOBS=small SMALL_MODELS='dit mnist fashion_mnist' REPLAN=1 PEER_FAMILIES=hqq:g128 MATCH_PEER=hqq:g128 NO_BENCH=1 S2=480 H2=570 bash scripts/gpu_lease.sh 2", carry=[".carry/plan_test", ".carry/wheels_peers", ".carry/wheels_dask"])  # 443 s
#   the same with groupings=("any", "groups") the default then (-> results/plan_groupings_gpu.csv; FashionMNIST left by
#   the deadline), 343 s; a later call was refused ("no device machine could be started", ~120 s of budget); then
#   run("JOBS=variants NO_BENCH=1 H2=555 VARIANTS='--models dit --budgets 4 --match-peer hqq:g128' bash scripts/gpu_lease.sh 2", carry=[...the three above])  # 450 s -> results/plan_variants_groupings_gpu.json
# Measured in the lease of 2026-12-01 (H200; see the closing note of that day):
#   - the network trained alone at 1,670 images/s (batch 256), concurrent with the plan evaluation at
#     888 images/s: so it trains alone here, 15 epochs = 898,560 images, ~540 s;
#   - the plan evaluation of one 1.7M model: sensitivity 7 s, fitting 37 s, peers 75 s, 54 cells in ~215 s
#     (5k samples + 1k pairs each);
#   - the paper's network: the plan's candidate fitting took ~10 min on one core; it now fits on every
#     core (fit_candidates(workers=16)).
# Measured in the lease of 2026-12-01, fourth period (H200, 1,779 s held for 1,659 s of commands):
#   - call 1: batch 512 trained at 1,308 images/s alone, slower than batch 256's 1,670: 12.3 epochs in
#     the 9.4 min cap, not 15 (batch 256 would reach ~15.7);
#   - call 2: benchmarks/gpu.py took 150 s (its whole-model lloyd_max run stops at a 120 s cap);
#   - call 3: the plan evaluations aborted at once: fit_candidates(workers=16) launched numba parallel
#     kernels from 16 threads under numba's workqueue layer ("Concurrent access has been detected");
#     with NUMBA_THREADING_LAYER=omp (call 4) the 55.7M network's candidates fitted in 289 s;
#   - the paper-network cells: ~17 s each (2k samples) beside the DiT and the plan; the 50k-sample
#     full-precision FID 265 s; the 200-NFE check on 2k samples 297 s;
#   - call 4: Inception for the 20 paper-network rows ~3 s per row; the DiT's cells ~30 s each (two
#     Inception bootstraps of 10 replicates each, beside the other two evaluations).
# Measured in the FashionMNIST lease of 2026-12-02 (H200, 1,752 s held of the 1,800):
#   - call 1 first failed in 8 s (no dask in the tree: the whole data set left no room for its wheels);
#     then the network trained at batch 256 at 1,272 images/s, not 1,670: 12.0 epochs in the 9.4 min cap;
#   - calls 2-3: 5k-sample cells took ~41-49 s each alone on the GPU (sampling, latent PCA on 10k images,
#     per-channel quantization of 55.7M weights on the CPU), not the ~25 s planned: 15 cells (b = 2, 3, 4)
#     in 2 calls; no time was left for the 200-NFE check, the 50k-sample FIDs or the 8-bit cells;
#   - call 4: Inception for the 16 rows ~3 s each; the call needed the DiT checkpoint moved out of the
#     tree for the call (the tree and inc3/ came to just over 64 MiB as the tool counts it).
# Measured in the MNIST lease of 2026-12-02, sixth period (H200, 1,744 s held of the 1,800; issue 13):
#   run("MEMFMT=contiguous TRAIN_MIN=9.3 bash scripts/gpu_lease.sh 1", carry=[".carry/harness_data", ".carry/wheels_dask", ".carry/inc1"])
#   run("MEMFMT=contiguous JOBS=paper NO_BENCH=1 S2=470 H2=545 bash scripts/gpu_lease.sh 2", carry=[".carry/inc2", ".carry/inc3"])
#   run("MEMFMT=contiguous JOBS=paper FID_SAMPLES=0 S3=395 H3=470 bash scripts/gpu_lease.sh 3", carry=[".carry/inc4", ".carry/inc5"])
#   run("MEMFMT=contiguous JOBS=paper FID_SAMPLES=0 S4=125 H4=190 bash scripts/gpu_lease.sh 4", carry=[".carry/inc6"])
#   - call 1 (558 s): contiguous trained at 1,682 images/s: 15.0 epochs (3,510 steps of 256) in 534 s, in one
#     command (channels_last's 1,272-1,308 was the slower format);
#   - calls 2-3: 5k-sample cells ~31-41 s each in contiguous too (sampling, latent PCA, CPU quantization);
#     the 200-NFE check on 5k samples ~230 s; FID_SAMPLES=0 left the 50k-sample rows out so that the 8-bit
#     cells came next; call 4: Inception ~3.3 s per 5k row, the training split's features once (~25 s);
#   - not reached: the 50k-sample full-precision FIDs and three of the five 8-bit cells.
# Measured in the FashionMNIST lease of 2026-12-02, ninth period (H200, 1,697 s held of the 1,800; issue 13). The two UNet
# checkpoints (14 MB) were moved out of the working tree for the lease, so that three Inception parts ride per call:
#   run("DATASET=fashion_mnist MEMFMT=contiguous TRAIN_MIN=9.3 bash scripts/gpu_lease.sh 1", carry=[".carry/fmnist_train", ".carry/wheels_dask", ".carry/plan_test"])
#   run("DATASET=fashion_mnist MEMFMT=contiguous JOBS=paper NO_BENCH=1 FID_FIRST=1 S2=485 H2=560 bash scripts/gpu_lease.sh 2", carry=[".carry/inc1", ".carry/inc2", ".carry/inc3"])
#   run("DATASET=fashion_mnist MEMFMT=contiguous JOBS=paper FID_FIRST=1 S3=450 H3=565 bash scripts/gpu_lease.sh 3", carry=[".carry/inc4", ".carry/inc5", ".carry/inc6"])
#   - call 1 (543 s): 15.0 epochs (3,510 steps of 256) in 523.7 s at 1,716 images/s, contiguous;
#   - call 2 (518 s): the 5k full-precision row and 14 of the 15 cells of b = 2-4, 29-40 s each (generation 22.8 s);
#   - call 3 (567 s): the Inception FIDs of the 15 kept sets (~3.1 s each), the last cell, the 50k-sample
#     full-precision FIDs (generation 229.6 s; the paper's protocol against the 60k training images) and the
#     20-NFE arm of the NFE check; not reached: the 200-NFE arm and the 8-bit cells.
# Twelfth period (2026-12-03, H200, 1,739 s held of the 1,800): issue 12's plan on the paper's 55.7M MNIST network,
# trained in the same lease. The three UNet/DiT checkpoints (25.5 MB) were moved out of the tree for calls 1-2 (tree 8.5 MB):
#   run("MEMFMT=contiguous TRAIN_MIN=9.3 bash scripts/gpu_lease.sh 1", carry=[".carry/harness_data", ".carry/wheels_dask", ".carry/wheels_peers", ".carry/inc1", ".carry/inc2"])
#   run("JOBS=plan NO_BENCH=1 PAPER_BUDGETS=3 MATCH_PEER=hqq:g128 PAPER_PEERS=hqq:g128,hqq:g64,gguf,nf4,rule:equal_mass PAPER_SAMPLES=5000 PAPER_PAIRS=1000 S2=520 H2=585 NUMBA_THREADING_LAYER=omp bash scripts/gpu_lease.sh 2", carry=[".carry/plan_test", ".carry/inc3", ".carry/inc4", ".carry/inc5"])
#   - call 1 (550 s): 15.0 epochs (3,510 steps of 256) in 528 s at 1,702 images/s, final loss 0.1716 (SHA-256 794236c6...);
#   - call 2, twice in ~100 s: fit_candidates raised ZeroDivisionError in weighted_codebook (a cell of near-zero sensitivities
#     cancelled to a zero mass; fixed in fmq_theory/plan/weighted.py between the calls);
#   - call 2 again (588 s): fp samples 26 s, sensitivity 19 s, candidate fitting **397 s** on 16 cores, then the hard stop
#     before the first plan was saved: no plan row. The fit is the bottleneck; it is not kept between calls;
#   - call 3 (46 s): `benchmarks/gpu.py --only equal_mass,uniform_minmax` -> benchmarks/gpu_h200_kernels.json (the small
#     models' g64-matched plan that followed started nothing: S3=170 is below gpu_plan_eval's 180 s set-up reserve);
#   - call 4 (177 s, checkpoints back in the tree): the DiT's plan at HQQ g64's bits:
#     run("JOBS=small SMALL_MODELS='dit' PEER_FAMILIES=hqq:g64 MATCH_PEER=hqq:g64 NO_BENCH=1 S2=200 H2=225 bash scripts/gpu_lease.sh 2", carry=[".carry/plan_test", ".carry/wheels_peers", ".carry/wheels_dask"])
# Since (thirteenth period, CPU only): the fit is saved once made (a stopped call 2 resumes without fitting again), and
# it is faster: the workers run the kernels serially (no nested thread teams), the weighted codebooks of every width come
# from one DP run, uniform_mse's grid takes one pass; 2 cores: MNIST UNet 19-24 s -> 10-13 s, results bit for bit equal.
# The next lease repeats the twelfth period's calls 1 and 2; call 2 may start with BENCH_ONLY=sensitivity BENCH_S=150
# (no NO_BENCH) to measure issue 18's sensitivity target alone on the idle GPU (~100 s).
# Fourteenth period (2026-12-03, H200; four starts refused first, 90 s of budget each, 360 s in all):
#   run("MEMFMT=contiguous TRAIN_MIN=9.3 bash scripts/gpu_lease.sh 1", carry=[".carry/harness_data", ".carry/wheels_dask", ".carry/wheels_peers", ".carry/inc1", ".carry/inc2"])
#   - 546 s: 15.0 epochs (3,510 steps) in 525.4 s at 1,710 images/s, final loss 0.1717 (SHA-256 8fa7559d...);
#   - call 2, issued at once, found a fresh machine (warm: false; "no trained mnist network yet"): the network was lost;
#   - with 681 s left, one call trained and planned (TRAIN_MIN=3.3, then JOBS=plan PAPER_BUDGETS=3 S2=290 H2=350):
#     5.4 epochs (1,259 steps) in 198 s, loss 0.1816; fp samples 26.4 s, sensitivity 21.6 s, **fit 120.2 s** on 16
#     cores (397 s the period before), fit saved 13.0 s, the plan at 3 bits 61.3 s (half_quadratic, floor 2); the
#     peers were still being made at the hard stop: again no row. Since then gpu_plan_eval.py measures each plan's
#     and each budget's peers' cells as soon as they are made, and prints each peer family's time.
# Fifteenth period (2026-12-03, H200; one start refused first, 91 s; three calls, 1,751 s held of the 1,800):
#   run("MEMFMT=contiguous TRAIN_MIN=9.2 bash scripts/gpu_lease.sh 1 2>&1 | tail -40; PARTS='1 7' bash scripts/gpu_lease.sh send",
#       carry=[".carry/harness_data", ".carry/wheels_dask", ".carry/wheels_peers", ".carry/inc1", ".carry/inc2"])
#   run("JOBS=plan NO_BENCH=1 PAPER_BUDGETS=3 MATCH_PEER=hqq:g128 PAPER_PEERS=hqq:g128,hqq:g64,gguf,nf4,rule:equal_mass PAPER_SAMPLES=5000 PAPER_PAIRS=1000 NUMBA_THREADING_LAYER=omp S2=500 H2=570 bash scripts/gpu_lease.sh 2", carry=[".carry/plan_test", ".carry/inc3", ".carry/inc4", ".carry/inc5"])
#   run(the same with PAPER_PEERS=hqq:g128,nf4,gguf,rule:equal_mass,hqq:g64 S2=330 H2=395, carry=[".carry/plan_test"])
#   - call 1 (551 s): 15.0 epochs (3,510 steps) in 526.6 s at 1,706 images/s, final loss 0.1717 (SHA-256 9ccc9169...);
#     of the 7 parts sent only 4 came back (64 MiB together per call): the network was not kept here;
#   - call 2 (573 s): fp samples 26.1 s, sensitivity 22.5 s, fit 178.1 s, fit saved 14.9 s, plan at 3 bits 107.2 s and
#     its cell 32 s (the fp row with it), plan at 2.2728 bits (hqq:g128 b2's) 74.3 s and its cell 29 s: 3 rows;
#   - call 3 (397 s): the reordered peer families dropped the saved assignment and fit: fit 120.0 s and both plans
#     (173 s) made again, no peer reached by the hard stop. Since then (gpu_plan_eval.resumed) a saved plan is kept
#     whatever the peers, the fit is keyed by the plan's noise alone and kept, and peers are saved per family.
# Sixteenth period (2026-12-03, H200, 1,742 s held of the 1,800):
#   - call 1 as planned (550.6 s, with PARTS='1 4'): 15.0 epochs (3,510 steps) in 529.3 s at 1,698 images/s, final loss
#     0.1716 (SHA-256 08b1891b...), parts 1-4 back; the next call could not be issued within the 30 s the machine stays
#     warm (the session's reply was cut off by an outage): network lost again, and one start refused (90 s);
#   - with 1,038 s left, one call trained a short network and planned it, the next measured the peers on it:
#     run("MEMFMT=contiguous TRAIN_MIN=1.7 bash scripts/gpu_lease.sh 1 2>&1 | tail -6; FMQ_PROFILE_PLAN=1 JOBS=plan NO_BENCH=1 PAPER_BUDGETS=3 PAPER_PEERS=hqq:g128,nf4,gguf,rule:equal_mass,hqq:g64 PAPER_SAMPLES=5000 PAPER_PAIRS=1000 NUMBA_THREADING_LAYER=omp S2=395 H2=435 bash scripts/gpu_lease.sh 2 2>&1 | tail -150",
#         carry=[".carry/harness_data", ".carry/wheels_dask", ".carry/wheels_peers", ".carry/plan_test"])   # 546 s
#     run("JOBS=plan NO_BENCH=1 PAPER_BUDGETS=3 MATCH_PEER=hqq:g128 PAPER_PEERS=hqq:g64,hqq:g128,rule:equal_mass,nf4,gguf PAPER_SAMPLES=5000 PAPER_PAIRS=1000 NUMBA_THREADING_LAYER=omp S2=250 H2=325 bash scripts/gpu_lease.sh 2",
#         carry=[".carry/plan_test"])   # 327 s
#     2.6 epochs (606 steps) in 102.1 s at 1,520 images/s, loss 0.1923 (SHA-256 2585a407...); fp samples 26.2 s,
#     sensitivity 12.8 s, fit 83.9 s, the plan at 3 bits 100.4 s (profile: 48 s in a lock's acquire, 18.9 s in
#     solve_mckp's own lines, ~3 s of model calls), peers at budget 3: hqq:g128 b3 8.1 s, nf4 55.5 s and gguf 13.0 s
#     (no setting within 0.75 bits of 3: nf4's least is 4.07, gguf's TQ2_0 2.08 and MXFP4 4.27), rule:equal_mass b3
#     8.4 s, hqq:g64 b2 7.9 s, ~29 s per cell; call 2: fit read in 22.0 s, the plan at 2.2728 bits 82.6 s, then the
#     hard stop while its peers were quantized. The rows are results/plan_paper_arch_early.csv (the model column
#     renamed from paper_arch: another network than plan_paper_arch.csv's 9ccc9169...), with its choices files and
#     train record (results/plan_paper_arch_early_train.json).
# Seventeenth period (2026-12-03, H200, 1,755 s held of the 1,800):
#   run("MEMFMT=contiguous TRAIN_MIN=9.2 bash scripts/gpu_lease.sh 1 2>&1 | tail -25",
#       carry=[".carry/harness_data", ".carry/wheels_dask", ".carry/wheels_peers", ".carry/inc1", ".carry/inc2"])   # 627 s held
#   - 15.0 epochs (3,510 steps) in 527.2 s at 1,704 images/s, final loss 0.1715 (SHA-256 1e124756...); the plan call,
#     issued at once (PAPER_PEERS=hqq:g128,rule:equal_mass,hqq:g64,gguf: nf4 has no setting within 0.75 bits of 3),
#     came back "the device machine was taken back for other work before the call finished" (255 s of budget):
#     the network was lost a fourth time; then one start refused (90 s). With the rest, no training:
#   run("BENCH_ONLY=sensitivity BENCH_S=150 JOBS=small SMALL_MODELS='dit mnist fashion_mnist' REPLAN=1 PEER_FAMILIES=hqq:g128 MATCH_PEER=hqq:g128 NUMBA_THREADING_LAYER=omp S2=470 H2=540 bash scripts/gpu_lease.sh 2",
#       carry=[".carry/plan_test", ".carry/wheels_peers", ".carry/wheels_dask"])   # 361 s: benchmarks/gpu_h200_sensitivity.json, DiT + MNIST
#   run("JOBS=small SMALL_MODELS='fashion_mnist' PEER_FAMILIES=hqq:g128 MATCH_PEER=hqq:g128 NUMBA_THREADING_LAYER=omp S3=250 H3=300 bash scripts/gpu_lease.sh 3")   # 154 s
#   run("JOBS=small SMALL_MODELS='dit' PEER_FAMILIES=hqq:g64 MATCH_PEER=hqq:g64 NUMBA_THREADING_LAYER=omp S3=182 H3=185 bash scripts/gpu_lease.sh 3")   # 68 s
#   run("JOBS=small SMALL_MODELS='mnist' PEER_FAMILIES=hqq:g64 MATCH_PEER=hqq:g64 NUMBA_THREADING_LAYER=omp S3=182 H3=100 bash scripts/gpu_lease.sh 3")   # 79 s
#   - the small models' plan rows with the current fit (results/plan_{dit,mnist,fashion_mnist}.csv): fit 25.5-26.3 s,
#     each plan 3-13 s, each 5k cell ~5 s; the sensitivity pass alone: float32 12.69 s, bfloat16 14.47 s, sampling
#     10k images 44.41 s.
# Eighteenth period (2026-12-04; 1,471 s of 1,800 held; no training): is it the variants' score or its feature space?
#   run("JOBS=variants NO_BENCH=1 VARIANTS=\"--models dit --budgets 3.5252,2.3369,4.3242,4.5676,3.7723,2.5853 --floors 1,2,3\" H2=565 bash scripts/gpu_lease.sh 2",
#       carry=[".carry/plan_test", ".carry/wheels_dask", ".carry/wheels_peers"])   (566 s: 4 budgets measured, 454 s)
#   the same with --eval-budgets 3.7723,2.5853 --save-samples runs/results/variant_samples.npz (H2=560; 296 s: the
#   first four budgets' weights reproduced digest for digest, so their dFIDs are joined, not measured again)
#   -> results/plan_variant_scores_dit_gpu.json by scripts/plan_variant_features_cpu.py.  A third call (DiT at 2 and 3
#   bits beside FashionMNIST's g64 rows, JOBS="small variants") found those rows already committed, and the variants
#   process stopped without a traceback partway through budget 2 (250 s); nothing of it is kept.
# Nineteenth period (2026-12-04; ~1,550 s of 1,800 held; no training): issue 18's sensitivity pass, four calls of
#   PYTHONPATH=. python3 benchmarks/gpu.py --only sensitivity --out "$OUT/bench"   (110-158 s each; the last, with
#   the loop and 2/4/8 batches per vectorized pass, -> benchmarks/gpu_h200_sensitivity.json), and the DiT's variants
#   at 3 and 2 bits (155 s; both budgets in the one call):
#   run("JOBS=variants NO_BENCH=1 VARIANTS=\"--models dit --budgets 3,2 --floors 1,2,3 --save-samples $OUT/variant_samples_23.npz\" H2=360 bash scripts/gpu_lease.sh 2",
#       carry=[".carry/plan_test", ".carry/wheels_dask", ".carry/wheels_peers"])
#   -> added to results/plan_variant_scores_dit_gpu.json by scripts/plan_variant_features_cpu.py --scored.
# Twentieth period (2026-12-04, H200, 1,752 s held of the 1,800):
#   run("MEMFMT=contiguous TRAIN_MIN=9.2 bash scripts/gpu_lease.sh 1 2>&1 | tail -25", carry=[".carry/harness_data", ".carry/wheels_dask", ".carry/wheels_peers"])
#   - 545 s: 15.0 epochs (3,510 steps) in 528.3 s at 1,701 images/s, final loss 0.1716 (SHA-256 8bc56e37...); the plan
#     call could not be issued within the 30 s (the session's reply was cut off by an outage): the network was lost;
#   run("MEMFMT=contiguous TRAIN_MIN=9.1 bash scripts/gpu_lease.sh 1 2>&1 | tail -6; PARTS='1 4' bash scripts/gpu_lease.sh send 2>&1 | tail -8",
#       carry=[".carry/harness_data", ".carry/wheels_dask"])   # 546 s: 15.0 epochs in 529.8 s, loss 0.1718, SHA-256 5ff27299...
#   run("PARTS='5 8' bash scripts/gpu_lease.sh send"), then '9 12' and '13 14' (~9 s of budget each);
#   - ema.safetensors is 445,415,648 bytes (model.* and shadow_params.*), 28 parts, not 14: 15 came back, so the network
#     is not kept here. Since then training also writes model.safetensors (the averaged network, 223 MB, 14 parts),
#     and scripts/gpu_checkpoint_parts.sh sends and carries that file, in pieces cut to one call's carry;
#   with the ~490 s left, the peers alone on that network (no plan: 480 s of its own would not fit):
#   run("PARTS='15 15' bash scripts/gpu_lease.sh send >/dev/null 2>&1; export NUMBA_THREADING_LAYER=omp PYTHONPATH=.:runs/pylib:runs/pydeps; FMQ_DATA_DIR=runs/plan_data timeout -k 5 425 python3 scripts/gpu_plan_eval.py --models paper_arch --checkpoint paper_arch=runs/paper_arch_mnist --budgets 3 --match-peer hqq:g128 --families hqq:g128,rule:equal_mass,hqq:g64,gguf --no-with-plan --samples 5000 --pairs 1000 --batch-size 1000 --n-boot-inception 10 --deadline 370 --prepare-reserve 60 --out-dir runs/results --work runs/plan_work; cp runs/results/plan_paper_arch*.csv $OUT/",
#       carry=[".carry/wheels_peers", ".carry/plan_test"])   # 426 s: fp samples 26.3 s, 13 peer rows at budgets 3, 2.2728, 3.473, 4.2685
#   -> results/plan_paper_arch_peers.csv (model renamed paper_arch_peers) and results/plan_paper_arch_peers_train.json.
# Twenty-first period (2026-12-04, H200, 1,577 s held of the 1,800; issues 12 and 13):
#   run("MEMFMT=contiguous TRAIN_MIN=9.1 bash scripts/gpu_lease.sh 1 2>&1 | tail -8; PARTS='1 4' bash scripts/gpu_lease.sh send 2>&1 | tail -8",
#       carry=[".carry/harness_data", ".carry/wheels_dask", ".carry/wheels_peers"])   # 559.6 s: 15.0 epochs in 535.8 s,
#     1,677 images/s, loss 0.1716, model SHA-256 50cd765f...; the next call (PARTS='5 8') found a fresh machine: the 30 s
#     warm window had passed before it was issued, so that network was lost (its parts 1-4 were not kept);
#   the same call again (559.6 s: 15.0 epochs in 535.4 s, loss 0.1716, checkpoint SHA-256 794236c6..., the twelfth
#     period's to the bit, model SHA-256 aebd2ae4...), then at once, with nothing between the calls:
#   run("rm -f runs/out/*; PARTS='5 8' bash scripts/gpu_lease.sh send 2>&1 | tail -2"), then '9 12' and '13 14'
#     (0.4 s each, ~8 s of budget each): all 14 parts came back; `gpu_checkpoint_parts.sh keep` joined them here:
#     runs/saved/paper_arch_mnist holds the network (aebd2ae4..., git-ignored, 223 MB);
#   run("JOBS=small SMALL_MODELS='fashion_mnist' PEER_FAMILIES=hqq:g64 MATCH_PEER=hqq:g64 NO_BENCH=1 NUMBA_THREADING_LAYER=omp S2=200 H2=255 bash scripts/gpu_lease.sh 2",
#       carry=[".carry/plan_test", ".carry/wheels_peers", ".carry/wheels_dask"])   # 136 s: fit 33.7 s, 3 plan rows at
#     HQQ g64's bits (results/plan_fashion_mnist.csv), the plans at 2-4 bits made again with the same choices;
#   mv checkpoints out, then run("bash scripts/gpu_lease.sh carry", carry=[".carry/pa1"])   # 0.5 s, rc 0: one 56 MB
#     piece beside the 8.3 MB tree is accepted.
# Twenty-second period (2026-12-04, H200, 1,705 s held of the 1,800; issue 12 on the kept network, no training):
#   mv checkpoints /tmp/ckpt_out   # the tree 8.3 MB: one 56 MB piece per call
#   run("bash scripts/gpu_lease.sh carry", carry=[".carry/pa1"]), then pa2, pa3, pa4 at once (0.5-1.1 s each, 45 s held
#     for the four): the fourth joined runs/paper_arch_mnist/model.safetensors, SHA-256 aebd2ae4... checked;
#   the plan call below failed in 20 s with the checkpoints still out of the tree (the classifier of the FID is
#     checkpoints/classifier_mnist.*): move them back before it;
#   run("JOBS=plan NO_BENCH=1 PAPER_BUDGETS=3 MATCH_PEER=hqq:g128 PAPER_PEERS=hqq:g128,rule:equal_mass,hqq:g64,gguf PAPER_SAMPLES=5000 PAPER_PAIRS=1000 NUMBA_THREADING_LAYER=omp S2=500 H2=570 bash scripts/gpu_lease.sh 2",
#       carry=[".carry/plan_test", ".carry/wheels_peers", ".carry/wheels_dask"])   # 571 s: fp samples 26.6 s,
#     sensitivity 14.7 s, fit 116.0 s, plans at 3 and 2.2728 bits 106.8 s each, ~30 s per cell: 3 rows
#   run(the same without NO_BENCH, S3=500 H3=570, stage 3)   # 569 s: fit read back in 19.3 s, plans at 3.473 (149.0 s)
#     and 4.2685 (153.8 s), the budget-3 peers (102 s to quantize; gguf has no setting near 3), 4 rows
#   run(the same, S3=455 H3=505, stage 3)   # 315 s: every peer read back, the 12 remaining cells in 263 s
#   run("JOBS=plan PAPER_BUDGETS=2.5 PAPER_PEERS=hqq:g128 PAPER_SAMPLES=5000 PAPER_PAIRS=1000 NUMBA_THREADING_LAYER=omp S3=170 H3=200 bash scripts/gpu_lease.sh 3")
#     # 143 s: the plan at 2.5 (38.5 s)
#   -> results/plan_paper_arch.csv (21 rows on checkpoint 794236c6...), its five choices files and
#      results/plan_paper_arch_train.json.
# Twenty-third period (2026-12-04, H200, 1,676 s held of the 1,800; issue 13's MNIST rows on the kept network, no training).
# The network cut in six pieces of 37.2 MB, so that the data, the dask wheels and five Inception parts ride beside them
# (the three UNet/DiT checkpoints, 25.4 MB, moved out of the tree for the lease; the classifiers stay: the FID needs them):
#   bash scripts/gpu_checkpoint_parts.sh carry runs/saved/paper_arch_mnist .carry/pa 37200000
#   run("bash scripts/gpu_lease.sh carry", carry=[".carry/pa1", ".carry/harness_data", ".carry/wheels_dask"])  # 63.7 MB
#   run(the same, carry=[".carry/paK", ".carry/inc(K-1)"]) for K = 2..6, at once (0.5-1.4 s each; 57 s held for the six)
#   run("JOBS=paper NO_BENCH=1 FID_FIRST=1 S2=495 H2=565 bash scripts/gpu_lease.sh 2", carry=[".carry/inc6"])  # 561 s
#   run("JOBS=paper FID_FIRST=1 S3=495 H3=565 bash scripts/gpu_lease.sh 3")   # 566 s
#   run("JOBS=paper FID_FIRST=1 S3=470 H3=540 bash scripts/gpu_lease.sh 3")   # 472 s
#   - set-up ~30 s per call; the 5k-sample cells 27-29 s each (generation 22.8 s, latent PCA 3.1 s; quantization on the
#     CPU ahead of them), two of them 64 s and 76 s (uniform_minmax b2, lloyd_max b4 as call 3's first); the 50k-sample samples 229 s; the
#     200-NFE arm on 5k samples 282 s (a first start was cut by call 2's hard stop); the five 8-bit cells 27-29 s each;
#   -> results/paper_arch_mnist.csv, all 25 rows on checkpoint 794236c6... (the plan's network), and its train record.
# A later lease starts the same way from the network kept here (runs/saved/paper_arch_mnist; its pieces are now named
# .carry/pa_mnist1..6, or pa_mnist1..4 of the default 56 MB with the whole of checkpoints/ out of the tree).
# Twenty-fourth period (2026-12-04, H200, 1,741 s held of the 1,800; issue 13's FashionMNIST network trained and kept;
# the three model checkpoints out of the tree for the lease, 9.7 MB):
#   run("DATASET=fashion_mnist MEMFMT=contiguous TRAIN_MIN=9.1 bash scripts/gpu_lease.sh 1 2>&1 | tail -8; DATASET=fashion_mnist PARTS='1 4' bash scripts/gpu_lease.sh send",
#       carry=[".carry/fmnist_train", ".carry/wheels_dask", ".carry/plan_test", ".carry/inc1"])   # 62.3 MB; 556 s
#   - 15.0 epochs (3,510 steps) in 529.8 s, model SHA-256 c266850b...; the send call that followed, issued in the
#     session's next reply, found a fresh machine: the warm window had passed, the network was lost (a fifth time);
#   - so the five calls below were issued together, in one batch of the session's tool calls: each started as the one
#     before returned, with no reply between them (held 1,467.6 -> 1,479.3 -> 1,488.6 -> 1,495.5 s across the sends):
#   run(the call above again)   # 551 s: 15.0 epochs in 529.6 s at 1,697 images/s, loss 0.2213, checkpoint SHA-256
#     a81eae7e..., model ce7c235f... (FashionMNIST training is not bit-reproducible here, unlike MNIST's: the first
#     run's c266850b... differs from byte 40,977)
#   run("rm -f runs/out/* \"$OUT\"/*; DATASET=fashion_mnist PARTS='5 8' bash scripts/gpu_lease.sh send", carry=[".carry/inc2", ".carry/inc3", ".carry/inc4"])
#   run(the same with PARTS='9 12', carry=[".carry/inc5", ".carry/inc6"]), then PARTS='13 14'   # 1.1-1.6 s each
#   run("(while sleep 10; do cp runs/paper_arch_fashion_mnist/paper_arch_fashion_mnist.csv \"$OUT\"/ 2>/dev/null; done) & DATASET=fashion_mnist JOBS=paper NO_BENCH=1 S2=185 H2=240 bash scripts/gpu_lease.sh 2")
#     # 242 s: the 5k full-precision row and four 2-bit cells (27-28 s each; uniform_minmax b2 62 s), with their
#     # paired classifier dFID intervals; the copier brings the rows back even from a call cut short by the budget
#   -> the network kept here (bash scripts/gpu_checkpoint_parts.sh keep /work/.device/N runs/saved/paper_arch_fashion_mnist
#      for the four sends: SHA-256 ce7c235f... checked) and cut in .carry/pa_fashion_mnist1..6 (37.2 MB); its 5 rows and
#      train record in results/pending/ (tracked, so they travel), which the set-up above copies in as done rows.
# Twenty-fifth period (2026-12-05): no device machine was lent. The networks kept here for the two leases planned
# last period (runs/saved/paper_arch_mnist, aebd2ae4...; runs/saved/paper_arch_fashion_mnist, ce7c235f...) and every
# .carry folder were gone: a session's new checkout holds what is tracked, and runs/ and .carry/ are git-ignored (a
# 223 MB network cannot be tracked: the tree stays under 40 MB). So a network outlives its session only if it can be
# trained again, bit for bit, and it cannot yet: nine MNIST trainings of one command and seed ended at final losses
# 0.1715-0.1718, two of them in the same network (794236c6..., the tables' network); FashionMNIST's two differed.
# The two leases planned then (carrying a kept network) are void, and the 5 rows in results/pending/ are of a network
# that no longer exists. `bash scripts/gpu_carry.sh` makes the data, wheel and Inception folders again.
# Twenty-sixth period (2026-12-05, H200, 1,723 s held of the 1,800): the first call found no machine; the plan's batch went
# on without it, so the training call started a machine (~180 s) and failed at once (no dask: its wheels rode in the call
# that never ran), and the two after it did nothing. Then, back to back:
#   run("bash scripts/gpu_lease.sh carry >/dev/null; export PYTHONPATH=.:runs/pydeps FMQ_DATA_DIR=runs/data_mnist; for r in a b c; do python3 scripts/gpu_paper_arch.py train --run runs/det_$r $([ $r = c ] || echo --deterministic) --epochs 0.5 --minutes 3 --batch-size 256 2>&1 | tail -2; done",
#       carry=[".carry/harness_data", ".carry/wheels_dask", ".carry/wheels_peers"])   # 104 s
#   - a and b (--deterministic): 117 steps each, the same files bit for bit (checkpoint 49e6daa0..., model 39d0844a...),
#     final loss 0.25756, no op without a deterministic kernel, 1,435 and 1,506 images/s; c (default) 1,178 images/s
#     (cuDNN's timing of algorithms in so short a run), another network (f32b60c9...);
#   run("DETERMINISTIC=1 MEMFMT=contiguous TRAIN_MIN=9.3 bash scripts/gpu_lease.sh 1 2>&1 | tail -6",
#       carry=[".carry/plan_test", ".carry/inc1", ".carry/inc2", ".carry/inc3"])   # 572 s
#   - 3,380 steps (14.44 epochs: at 1,551 images/s, against the default's ~1,700, the 9.3-minute cap stopped it short of
#     15) in 558 s, final loss 0.1715, checkpoint 3694735258ff..., model 5f0ccdfb...: results/plan_paper_arch_det_train.json;
#   run("JOBS=plan NO_BENCH=1 PAPER_BUDGETS=2,4,3 MATCH_PEER=hqq:g128 PAPER_PEERS=hqq:g128,rule:equal_mass,hqq:g64,gguf,nf4 PAPER_SAMPLES=5000 PAPER_PAIRS=1000 NUMBA_THREADING_LAYER=omp S2=500 H2=570 bash scripts/gpu_lease.sh 2 2>&1 | tail -150",
#       carry=[".carry/inc4", ".carry/inc5", ".carry/inc6"])   # 571 s
#   - fp samples 26.4 s, sensitivity 13.2 s, fit 146.6 s, fit saved 11.2 s, the plan at 2 bits 48.3 s (minmax floor 1) and
#     its cell with the fp row 43.2 s, the plan at 4 bits 136.1 s (minmax floor 2) and its cell 35.8 s; then the deadline:
#     no peer (results/plan_paper_arch_det.csv, the model renamed paper_arch_det);
#   (the three model checkpoints back in the tree) then the UNets' variant selection:
#   run("JOBS=variants NO_BENCH=1 VARIANTS=\"--models mnist,fashion_mnist --budgets 2.3582,3.6206 --floors 1,2,3 --groupings any --save-samples $OUT/vs_unets.npz --out $OUT/pv_unets.json\" H2=290 bash scripts/gpu_lease.sh 2")   # 255 s
#   - sensitivity and fit 37.9 s (MNIST), 157.3 s (FashionMNIST, with MNIST's cells before it); both budgets of both
#     models -> results/plan_variant_scores_{mnist,fashion_mnist}_gpu.json by scripts/plan_variant_features_cpu.py.
# Since (CPU): train --resume carries the epoch's shuffle, the place in it and the random streams (a training split across
# commands is the training of one command: tests/test_gpu_paper_arch_train.py); KEEP_ROWS and NO_PLAN below.
# Twenty-seventh period (2026-12-05): the three calls below, issued in one batch (an H100 was the kind offered), got no
# machine: the first "stopped answering and was given back", the second "could not be started", the third was told that
# no machine is lent any more this session. 547 s of the 1,800 were spent, no command ran. The calls stand as the plan:
# Planned next, in one batch of tool calls, each call carrying what it needs itself (a call that fails to start must not
# leave the next without its wheels); the three model checkpoints out of the tree:
#   1. Does another lease train the same network? The deterministic network again, stopped at its step (3,380/234 epochs):
#      run("DETERMINISTIC=1 EPOCHS=14.444444444444445 MEMFMT=contiguous TRAIN_MIN=9.5 bash scripts/gpu_lease.sh 1 2>&1 | tail -4",
#          carry=[".carry/harness_data", ".carry/wheels_dask", ".carry/wheels_peers", ".carry/plan_test"])
#      checkpoint 3694735258ff... again: training repeats across leases, and the network's table grows lease by lease.
#   2. Its peers at the plan's two budgets (the plan rows kept: no fit, no plan; ~45 s a peer, 8 peers):
#      run("KEEP_ROWS=results/plan_paper_arch_det.csv NO_PLAN=1 JOBS=plan NO_BENCH=1 PAPER_BUDGETS=2,4 PAPER_PEERS=hqq:g128,rule:equal_mass,hqq:g64,gguf,nf4 PAPER_SAMPLES=5000 PAPER_PAIRS=1000 NUMBA_THREADING_LAYER=omp S2=500 H2=570 bash scripts/gpu_lease.sh 2 2>&1 | tail -60",
#          carry=[".carry/harness_data", ".carry/wheels_dask", ".carry/wheels_peers", ".carry/plan_test"])
#      (no Inception part rides along: the six need ~84 MB. The peers' rows then have classifier FIDs only, and a table
#      whose rows do not all have Inception's is read in classifier features: fmq_theory.results.plan_report.model_results)
#      -> the returned plan_paper_arch.csv, its model renamed paper_arch_det (schema PLAN), replaces
#         results/plan_paper_arch_det.csv when its rows' checkpoint_sha256 is 3694735258ff...; another network's rows go
#         to a file of their own.
#   3. With what is left: the plan at 3 bits (no NO_PLAN; the fit ~160 s, the plan ~100 s, its cell ~35 s).
#   As issued on 2026-12-05, with guards (a call that finds a fresh machine stops at once), a resume in call 2 for a card
#   that trains slower than the H200's 1,551 images/s (the 9.3-minute cap would stop it short of 3,380 steps), and a copier
#   that brings the rows back from a call cut off by the budget:
#   run("nvidia-smi --query-gpu=name --format=csv,noheader; DETERMINISTIC=1 EPOCHS=14.444444444444445 MEMFMT=contiguous TRAIN_MIN=9.3 bash scripts/gpu_lease.sh 1 2>&1 | tail -5",
#       carry=[".carry/harness_data", ".carry/wheels_dask", ".carry/wheels_peers", ".carry/plan_test"])
#   run("[ -f runs/paper_arch_mnist/train_state.pt ] || { echo 'fresh machine: the network is gone'; exit 3; }; t0=$SECONDS;
#        RESUME=1 DETERMINISTIC=1 EPOCHS=14.444444444444445 MEMFMT=contiguous TRAIN_MIN=4 bash scripts/gpu_lease.sh 1 2>&1 | tail -3;
#        grep -q 3694735258ff runs/paper_arch_mnist/train.json && export NO_PLAN=1;
#        (while sleep 10; do cp runs/results/plan_paper_arch*.csv runs/results/plan_choices_paper_arch*.csv \"$OUT\"/ 2>/dev/null; done) &
#        KEEP_ROWS=results/plan_paper_arch_det.csv JOBS=plan NO_BENCH=1 PAPER_BUDGETS=2,4 PAPER_PEERS=hqq:g128,rule:equal_mass,hqq:g64,gguf,nf4
#        PAPER_SAMPLES=5000 PAPER_PAIRS=1000 NUMBA_THREADING_LAYER=omp MEMFMT=contiguous S2=$((500-SECONDS+t0)) H2=$((570-SECONDS+t0))
#        bash scripts/gpu_lease.sh 2 2>&1 | tail -50", the same carry)   (another network: NO_PLAN unset, so the plan at 2 and 4 bits)
#   run("[ -f runs/paper_arch_mnist/train.json ] || exit 3; (the copier) & if grep -q 3694735258ff runs/paper_arch_mnist/train.json;
#        then B=3; P=hqq:g128,rule:equal_mass,hqq:g64; else B=2,4; P=hqq:g128,rule:equal_mass,hqq:g64,gguf,nf4; export NO_PLAN=1; fi;
#        KEEP_ROWS=results/plan_paper_arch_det.csv JOBS=plan NO_BENCH=1 PAPER_BUDGETS=$B PAPER_PEERS=$P PAPER_SAMPLES=5000 PAPER_PAIRS=1000
#        NUMBA_THREADING_LAYER=omp MEMFMT=contiguous S3=480 H3=560 bash scripts/gpu_lease.sh 3 2>&1 | tail -40", carry=[".carry/plan_test"])
#   The three model checkpoints were out of the tree (9.9 MB tracked, 38.4 MB with the first two calls' carry).
#   A deterministic network trained on an H100 may differ from the H200's 3694735258ff... (another card may choose other
#   kernels): then calls 2-3 plan and measure peers on that network, a table of its own.
# Twenty-eighth period (2026-12-05): no machine was lent (status: "no new device machine is lent at present"); the plan
# above stands. Since 41a8654 the sensitivity pass runs replicate by replicate (one replicate's float64 sums on the
# device): with 8 batches of 32 per pass and 8 replicates its passes are the same as before, and only the final means are
# taken on the host, so a plan at 3 bits made now is of the same estimate as the rows at 2 and 4 up to the means' rounding.
# When time is left in a lease: `python benchmarks/gpu.py --only sensitivity` records the pass's peak beside
# device_sums_bytes (8 a weight, 64 before).
# The grouping "flat" (c94b782; HQQ's file layout as a variant) closed the DiT's loss at 2.3369 bits on the CPU (dFID
# 103.4 against the default plan's 124.4 and HQQ's 101.3; results/plan_flat_dit_cpu.json). Whether to make it a default
# needs every variant of every model measured: with time left after the calls above,
#   run("python scripts/gpu_plan_variants.py --models dit,mnist,fashion_mnist --match-peer hqq:g128 --budgets 2,3
#        --groupings any,flat --samples 5000 --pairs 1000 --out $OUT/plan_variants_flat.json", carry=[".carry/plan_test"])
#   (a dry run of its set-up on the CPU first; the small models' variants took ~4 min a model on the H200 on 2026-12-04).
# Twenty-ninth period (2026-12-05, an H100 80GB HBM3 came, not an H200; 1,732 s held of the 1,800): the three calls
# planned above, issued in one batch as written (the three model checkpoints out of the tree):
#   - call 1 (581 s): deterministic training at 1,396 images/s (the H200's 1,551): the 9.3-minute cap stopped it at
#     3,044 of 3,380 steps (13.01 epochs), final loss 0.17326, checkpoint 79d7e17d7399..., model 9d8e1c71...;
#   - call 2 (571 s): the resume failed at once (torch.load(map_location=device) put the saved random streams on the GPU:
#     "RNG state must be a torch.ByteTensor"; mended in 02ea10b, train_state is read on the host), so the network stayed
#     at 3,044 steps, another network than 3694735258ff..., and the call planned it: fp samples 28.9 s, sensitivity 14.9 s,
#     fit 135.0 s, fit saved 9.1 s, the plan at 2 bits 55.5 s and its cell (with the fp row) 35.1 s, the plan at 4 bits
#     217.2 s (minmax floor 3); the deadline came before its cell; the budget-2 peers quantized (hqq:g128 6.2 s,
#     rule:equal_mass 9.2 s, hqq:g64 b1 6.4 s, gguf TQ2_0 15.5 s), no cell;
#   - call 3 (484 s, NO_PLAN=1 as written for another network): nf4 at budget 2 75.2 s (no setting near 2), the
#     budget-4 peers 355.7 s in all, ten peer cells at ~32 s each;
#   -> results/plan_paper_arch_h100.csv (model renamed paper_arch_h100: 11 rows, classifier FIDs only, the plan at
#      2 bits, the peers at 2 and 4), results/plan_choices_paper_arch_h100_2.csv, results/plan_paper_arch_h100_train.json.
#   Not measured: the plan's cell at 4 bits on this network, the H200 network's peers; whether a lease trains the H200's
#   deterministic network again (the H100 ran other kernels at another speed, and stopped at another step).
# Planned next (either card: each card has its own deterministic network and table; the three model checkpoints out
# of the tree). Since e5c477c a plan or peer whose cell is a done row (KEEP_ROWS) is not made again, so the one form
# below measures only what the card's table lacks: on an H200 the peers at 2 and 4 and the plan and peers at 3
# (results/plan_paper_arch_det.csv), on an H100 the plan's cell at 4 and the plan and peers at 3
# (results/plan_paper_arch_h100.csv). A network that differs from its card's table gets a table of its own.
#   run("G=$(nvidia-smi --query-gpu=name --format=csv,noheader); echo $G; case $G in *H200*) E=14.444444444444445;; *) E=13.008547008547009;; esac;
#        DETERMINISTIC=1 EPOCHS=$E MEMFMT=contiguous TRAIN_MIN=9.3 bash scripts/gpu_lease.sh 1 2>&1 | tail -5",
#       carry=[".carry/harness_data", ".carry/wheels_dask", ".carry/wheels_peers", ".carry/plan_test"])
#   run("[ -f runs/paper_arch_mnist/train_state.pt ] || { echo 'fresh machine: the network is gone'; exit 3; }; t0=$SECONDS;
#        case $(nvidia-smi --query-gpu=name --format=csv,noheader) in *H200*) E=14.444444444444445 K=results/plan_paper_arch_det.csv B=2,4,3;;
#        *) E=13.008547008547009 K=results/plan_paper_arch_h100.csv B=4,3;; esac;
#        RESUME=1 DETERMINISTIC=1 EPOCHS=$E MEMFMT=contiguous TRAIN_MIN=4 bash scripts/gpu_lease.sh 1 2>&1 | tail -3;
#        (while sleep 10; do cp runs/results/plan_paper_arch*.csv runs/results/plan_choices_paper_arch*.csv \"$OUT\"/ 2>/dev/null; done) &
#        KEEP_ROWS=$K JOBS=plan NO_BENCH=1 PAPER_BUDGETS=$B PAPER_PEERS=hqq:g128,rule:equal_mass,hqq:g64,gguf,nf4 PAPER_SAMPLES=5000
#        PAPER_PAIRS=1000 NUMBA_THREADING_LAYER=omp MEMFMT=contiguous S2=$((500-SECONDS+t0)) H2=$((570-SECONDS+t0)) bash scripts/gpu_lease.sh 2 2>&1 | tail -50",
#       the same carry)
#   run(the same plan command as stage 3, S3=480 H3=560, KEEP_ROWS and B as above, carry=[".carry/plan_test"]), once more if time is left.
#   With time left: `PYTHONPATH=. python3 benchmarks/gpu.py --only sensitivity --out "$OUT"` (~110-160 s): since 56ab743
#   the vectorized passes hold one step's activations (estimated 14.1/27.6/54.6 GiB at 2/4/8 batches per pass, against
#   29.6/55.4/105.4 measured before), and each pass records estimated_peak_bytes beside its peak.
# Thirtieth period (2026-12-05): twelve calls got no machine (five "could not be started", 1-2 min each; seven "none
# asked for", 15 s each; 721 s of the 1,800 spent before one came), so the lease above (a 9.3-minute training first)
# no longer fitted.
# With what was left, an H100 80GB HBM3, the grouping "flat" measured on every model instead (no training needed):
#   run("bash scripts/gpu_lease.sh carry; PYTHONPATH=.:runs/pylib:runs/pydeps FMQ_DATA_DIR=runs/plan_data
#        python3 scripts/gpu_plan_variants.py --models dit --budgets '' --match-peer hqq:g128 --groupings any,flat
#        --samples 5000 --pairs 1000 --out runs/results/pv_flat_dit.json", carry=[plan_test, wheels_peers, wheels_dask])
#     305 s (the first try, without .carry/wheels_dask, stopped at once: the engine imports distributed);
#   the same with --models fashion_mnist,mnist, 585 s: the FashionMNIST UNet whole, the MNIST UNet at 2.3582 only;
#   -> results/plan_variants_flat_dit_gpu.json, results/plan_variants_flat_unets_gpu.json. The default's picks there
#   equal the committed H200 plan rows within a relative 3.6e-4; "flat" changed the pick in 1 of 7 cells (the DiT at
#   2.3369: 105.75 against 122.73, HQQ 105.22) and no other. 77 s were left; the machine was given back.
# Planned next: the lease of "Planned next" above (the paper network), and, on its own lease, "flat" at the committed
# rows' budgets, to decide whether it becomes a default (~5 min a model on an H100):
#   run("bash scripts/gpu_lease.sh carry >/dev/null; PYTHONPATH=.:runs/pylib:runs/pydeps FMQ_DATA_DIR=runs/plan_data
#        python3 scripts/gpu_plan_variants.py --models dit --budgets 2,2.5,3,4 --groupings any,flat --samples 5000
#        --pairs 1000 --out $OUT/plan_variants_flat_budgets_dit.json", carry=[".carry/plan_test", ".carry/wheels_peers",
#        ".carry/wheels_dask"]), then the same for fashion_mnist and mnist (the MNIST UNet also at 3.6206,4.3424).
#   These cells also test, held out, the score found on the two variant files (plan page, "HQQ's file layout as a
#   variant"): the shift times the network's own t = 1 features' Frechet distance (rows' shift * feat_fd_t1) summed a
#   regret of 1.82 and 14.52 there, against the shift's 12.88 and 14.33.
# Thirty-first period (2026-12-05): an H200 was named; the machine of call 1 above (the paper network's training) was
# taken back for other work before the call finished (710 s of device time gone, nothing returned), and call 2 found a
# fresh H100 ("the network is gone"). The 1,089 s left went to "flat" at the committed rows' budgets:
#   run("bash scripts/gpu_lease.sh carry >/dev/null; PYTHONPATH=.:runs/pylib:runs/pydeps FMQ_DATA_DIR=runs/plan_data
#        timeout 560 python3 scripts/gpu_plan_variants.py --models dit --budgets 2,2.5,3,4 --groupings any,flat
#        --samples 5000 --pairs 1000 --out $OUT/plan_variants_flat_budgets_dit.json", carry=[plan_test, wheels_peers,
#        wheels_dask]): 392 s; the same for fashion_mnist 482 s; for mnist with --budgets 2 only, 138 s (60 s were left);
#   -> results/plan_variants_flat_budgets_{dit,fashion_mnist,mnist}_gpu.json. The default's picks equal the committed
#   plan rows within a relative 7.3e-5; "flat" changed 1 pick of 9, for the worse (FashionMNIST at 2.5: 33.79 against
#   13.65), so over the 16 GPU cells it made one pick better and one worse: not a default. Held out, the product score
#   (shift * feat_fd_t1) regrets 19.93 against the shift's 1.43 on the default grouping: the plan keeps the shift.
#   The MNIST UNet's 2.5, 3 and 4 bits then scored on the CPU without FID (--device cpu --eval-budgets 0, 590 s;
#   results/plan_variants_flat_budgets_mnist_scores_cpu.json): the least flat shift is 2.93, 6.50 and 4.87 times the
#   default pick's, so "flat" would change no pick there.
# Planned next: the paper network's lease of "Planned next" above, unchanged (it needs ~1,650 s of one lease: a call
#   cut off by a machine taken back loses the network, so start it only with the whole budget left).
# Thirty-second period (2026-12-05, an H100 80GB HBM3, the whole 1,800 s): the lease of "Planned next" above as written
# (the three model checkpoints out of the tree):
#   - call 1 (576 s): the deterministic training, 1,390.6 images/s, stopped by the cap at 3,032 of 3,044 steps;
#   - call 2 (31 s): the resume trained the last 12 steps, saved train_state.pt and the network, then failed on the
#     record (the saved losses, read on the host, beside the device's new ones in torch.stack); the plan then refused
#     the network (its SHA-256 differed from the record's). Mended (the losses back onto the device; the final loss
#     taken before any file is written), and call 2 issued again (571 s): the resume found step 3,044 and wrote the
#     record: checkpoint 79d7e17d7399..., the first H100 lease's network bit for bit (final loss 0.17326) ->
#     results/plan_paper_arch_h100_train_repeat.json. The 11 rows kept (KEEP_ROWS); the plan at 4 bits 183.5 s and its
#     cell 32.1 s, the plan at 3 bits 81.2 s and its cell 31.2 s, the budget-3 peers quantized (gguf: no setting near 3);
#   - call 3 (183 s, S3=450 H3=500): nf4 at 3 (no setting near 3), the three budget-3 peer cells (94.2 s);
#   -> results/plan_paper_arch_h100.csv (16 rows), results/plan_choices_paper_arch_h100_{3,4}.csv;
#   - call 4 (40 s): `benchmarks/gpu.py --only sensitivity` ran out of memory sampling 10k images in one batch;
#   - call 5 (154 s): the same with PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True -> benchmarks/gpu_h100_sensitivity.json
#     (the estimate 0.98-0.99 of the loop's peaks, 0.84-0.90 of the vectorized passes'; 0.187 of sampling at 8 a pass).
#   Given back with 167 s left.
# Planned next: on an H200 (its own network, results/plan_paper_arch_det.csv), the same lease: the network trained
#   again (does an H200 lease repeat 3694735258ff...?), its peers at 2 and 4 and the plan and peers at 3.
set -uo pipefail
STAGE=${1:?stage 1-4, send or carry}
export PYTHONUNBUFFERED=1 NUMBA_NUM_THREADS=12 OMP_NUM_THREADS=12  # cores left for the training loop
OUT=${OUT:-runs/out}
mkdir -p "$OUT" runs/logs runs/results runs/inception_parts runs/pylib runs/pydeps runs/data_mnist runs/plan_data
OUT=$(cd "$OUT" && pwd)
INC_SHA=7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34
for p in 1 2 3 4 5 6; do [ -f .carry/inc$p/part ] && cp .carry/inc$p/part runs/inception_parts/$p; done
if [ ! -f runs/inception/default_1.pt ] && [ "$(ls runs/inception_parts | wc -l)" = 6 ]; then
  mkdir -p runs/inception && cat runs/inception_parts/{1,2,3,4,5,6} > runs/inception/default_1.pt
  echo "$INC_SHA  runs/inception/default_1.pt" | sha256sum -c || rm -f runs/inception/default_1.pt
fi
DATASET=${DATASET:-mnist}  # the paper network's data set: mnist (.carry/harness_data) or fashion_mnist (.carry/fmnist_data)
mkdir -p runs/data_$DATASET
# Thirty-third period (2026-12-05): the first call, (a) below, was answered "no new device machine is lent at present";
# no command ran and no device time was spent. On the CPU: the lloyd_max DP kernel's flattened schedule
# (benchmarks/gpu.md, first section; benchmarks/lloyd_schedule.py counts its steps).
# Planned next, two leases (either order; each needs the whole of one lease only for (b)):
#   (a) the lloyd_max stage alone, ~4-6 min with the machine's start: the DP kernel's configurations against the previous
#       schedule in the same run, then every FLUX.1 row length, then the whole 12B model when under 150 s:
#       run("bash scripts/gpu_lease.sh carry >/dev/null; PYTHONPATH=.:runs/pylib:runs/pydeps timeout 540 python3
#            benchmarks/gpu.py --only lloyd_max --out $OUT/bench 2>&1 | grep -v Warning | tail -45",
#           carry=[".carry/wheels_dask"])
#   (b) issue 13's FashionMNIST table on a deterministic network, grown lease by lease through results/pending/ (empty
#       now: the a81eae7e... rows are results/paper_arch_fashion_mnist_a81eae7e.csv). The three model checkpoints out of
#       the tree; the calls back to back:
#       1. run("DETERMINISTIC=1 DATASET=fashion_mnist MEMFMT=contiguous TRAIN_MIN=9.3 bash scripts/gpu_lease.sh 1 2>&1 | tail -6",
#              carry=[".carry/fmnist_train", ".carry/wheels_dask", ".carry/plan_test", ".carry/inc1"])   # ~63 MB
#       2. run("RESUME=1 DETERMINISTIC=1 DATASET=fashion_mnist MEMFMT=contiguous TRAIN_MIN=9.3 bash scripts/gpu_lease.sh 1 2>&1 | tail -6",
#              carry=[".carry/inc2", ".carry/inc3", ".carry/inc4"])   # 15 epochs, 3,510 steps: ~650 s at the H100's 1,390 images/s
#       3. run("(while sleep 10; do cp runs/paper_arch_fashion_mnist/paper_arch_fashion_mnist.csv \"$OUT\"/ 2>/dev/null; done) &
#              DATASET=fashion_mnist MEMFMT=contiguous JOBS=paper NO_BENCH=1 KINDS='fp cell' FID_SAMPLES=0 S2=500 H2=570
#              bash scripts/gpu_lease.sh 2", carry=[".carry/inc5", ".carry/inc6"])   # the 5k full-precision row, then the cells
#       4. the same as stage 3 (S3, H3) with what is left.
#       -> the rows and the train record to results/pending/paper_arch_fashion_mnist{.csv,_train.json}. A later lease on
#       the same kind of card trains the network again (its SHA-256 checked) and measures the rest: the cells left, the
#       50k-sample FIDs and the NFE check (KINDS='fp cell nfe', FID_FIRST=1).
# Thirty-fourth period (2026-12-06): (a) asked for thirteen times between 23:03 and 01:01, on nvidia-h100-x1 and
# nvidia-h200; each time "could not be started" (~90-195 s of the budget each) or "none asked for" (15 s); 1,800 ->
# 809 s left and no command ran. (a) and (b) above stand as planned. With (a), when the budget allows, the sampled
# prediction's bias in InceptionV3's features (scripts/gpu_plan_eval.py now writes predicted_dfid_inception_bias):
# the DiT's committed Inception rows over-predict by 5.3-16.4 FID, so re-measuring a few of its peers there (a fresh
# --out-dir, --families rule:uniform_minmax,naive:uniform_minmax --no-with-plan --budgets 3,4, the six Inception
# parts carried over three calls, the mnist and fashion_mnist checkpoints out of the tree) tests the correction.
# Thirty-fifth period (2026-12-06, H200): five starts refused first (~90-140 s of the budget each), then one lease,
# the mnist and fashion_mnist checkpoints out of the tree (22.2 MB tracked):
#   run("bash scripts/gpu_lease.sh carry >/dev/null; PYTHONPATH=.:runs/pylib:runs/pydeps timeout 530 python3
#        benchmarks/gpu.py --only lloyd_max --out $OUT/bench ...", carry=[wheels_dask, inc1, inc2])   # 109 s
#     -> benchmarks/gpu_h200_lloyd_flat.json: flattened 1.53x the previous schedule at rows of 3,072; whole 12B model
#        80.3 s (was ~128 s; target 60 s);
#   run("bash scripts/gpu_lease.sh carry", carry=[inc3, inc4, plan_test])   # 0.3 s
#   run("JOBS=bias S3=330 H3=360 bash scripts/gpu_lease.sh 3", carry=[inc5, inc6, wheels_peers])   # 162 s
#     -> results/plan_dit_inception_bias_gpu.csv: nine DiT peer cells again (budgets 2, 3, 4; rule and naive
#        uniform_minmax, hqq:g128), with the bootstrap bias in both feature spaces; measured and plain predicted
#        values equal to the committed rows';
#   run("python3 -m fmq_theory plan checkpoints/dit_fashion_mnist --budget 2,3,4 ...; scripts/plan_runtime.py --device
#        cuda --samples 1000 ...")   # 355 s: the plan on the machine's CPUs took 274 s a budget, so only b2 was
#        written before the cap -> results/plan_runtime_gpu_b1000.json; the same at 1 and 64 samples (24 s) ->
#        results/plan_runtime_gpu_b{1,64}.json (peaks with three models resident: see their "note");
#   two starts refused after (the machine went back while plan_runtime.py was mended to write working bytes), and a
#   third call refused for the budget (327 s left: "too little device-machine time is left to start another").
# Planned next: (b) above stands; (a) again (~110 s: LLOYD_CONFIGS now also times 128 lanes and 2 warps, as the
#   speed fell with more lanes); JOBS=bias again (~165 s, the same three calls' carry), so that the nine cells carry
#   predicted_dfid_inception_extrapolated (SampledDFID.extrapolated, added after this lease); plan_runtime.py's
#   working bytes on the GPU (.carry/plan_files holds the DiT's b2
#   plan file, 0.8 MB, brought back from this lease; `fmq plan checkpoints/dit_fashion_mnist --budget 2,3 -o
#   .carry/plan_files/dit.safetensors` writes it again as dit_b2.0.safetensors; ~40 s): run("bash scripts/gpu_lease.sh carry >/dev/null 2>&1; for n in 1 64 1000; do
#   PYTHONPATH=.:runs/pylib:runs/pydeps python3 scripts/plan_runtime.py --device cuda --samples $n --repeats 5
#   --plans dit=checkpoints/dit_fashion_mnist:.carry/plan_files/dit_b2.0.safetensors --out $OUT/rt_$n.json; done",
#   carry=[".carry/plan_files", ".carry/wheels_dask"]).
# Thirty-sixth period (2026-12-06, an H100 80GB HBM3 at the first start, the whole 1,800 s): (b) above as written,
# the three model checkpoints out of the tree (10.7 MB tracked):
#   1. DETERMINISTIC=1 DATASET=fashion_mnist MEMFMT=contiguous TRAIN_MIN=9.3 ... 1 (582.6 s): 2,982 steps at 1,368
#      images/s before the cap, no op without a deterministic kernel;
#   2. the same with RESUME=1 (122.6 s): steps 2,982-3,510; 15 epochs, 657.7 s of training in two commands, final loss
#      0.22123, checkpoint a6eeb42ddf90..., network e9d320111eef...;
#   3. JOBS=paper KINDS='fp cell' FID_SAMPLES=0 S2=500 H2=570 ... 2 (544.1 s): the 5k full-precision row (33.9 s) and
#      11 cells at 2-4 bits (30-61 s each);
#   4. the same as stage 3, S3=380 H3=440 (413.7 s): the last 4-bit cells and the five 8-bit cells;
#   -> results/pending/paper_arch_fashion_mnist{.csv,_train.json}: 21 of 25 rows (all 20 cells). Given back with 82 s left.
# Planned next (FashionMNIST, network e9d320111eef... in results/pending/): the rows it lacks, the 50k full-precision
#   FIDs (ours, the paper's protocol) and the NFE check (20 and 200 NFE at 5k; the 200-NFE arm ~570 s on the H200 for
#   MNIST), after the same two training calls (their carry as in (b)); the script copies the 21 rows in as done rows
#   when the network's SHA-256 matches:
#     3'. run("(while sleep 10; do cp runs/paper_arch_fashion_mnist/paper_arch_fashion_mnist.csv \"$OUT\"/ 2>/dev/null; done) &
#           DATASET=fashion_mnist MEMFMT=contiguous JOBS=paper NO_BENCH=1 KINDS='fp nfe' FID_FIRST=1 S2=500 H2=570
#           bash scripts/gpu_lease.sh 2", carry=[".carry/inc5", ".carry/inc6"])   # fp 5k again, then the 50k rows
#     4'. the same as stage 3 with what is left (the NFE check): ~1,150 s of rows after ~700 s of training, so one
#         lease may end short of the 200-NFE arm; a row done is a row kept in results/pending/ for the next.
#   On a lease too short for that (a refused start or two): JOBS=bias first (~165 s, three calls carrying inc1-2 +
#   wheels_dask, inc3-4 + plan_test, inc5-6 + wheels_peers, the last `JOBS=bias S3=330 H3=360 bash scripts/gpu_lease.sh 3`):
#   its nine DiT cells then carry predicted_dfid_inception_paired* (SampledDFID.paired, added after the last such lease),
#   the test on nine cells of what the CPU run of results/inception_bias_dit_cpu.json found on a few.
# Thirty-seventh period (2026-12-06, an H100 80GB HBM3 at the first start; 1,607 s used, given back with 193 s left):
#   1-2. (b)'s two training calls as written (578.1 s, 97.4 s; carry as in (b), call 2 inc2-4): the first command's
#        cap stopped at step 3,067 (2,982 last time), and the network is the last lease's bit for bit (checkpoint
#        a6eeb42ddf90..., network e9d320111eef..., final loss 0.22123) -> results/pending/paper_arch_fashion_mnist_train_repeat.json;
#        call 2 ended with `DATASET=fashion_mnist PARTS='1 3' bash scripts/gpu_lease.sh send`;
#   3-5. `... PARTS='4 7' ... send`, '8 11', '12 14' (1.0-1.2 s each): all 14 parts back, joined and checked here
#        (gpu_checkpoint_parts.sh keep), cut into .carry/pa_fashion_mnist1..4 (56 MB each; git-ignored, this
#        workspace only): a later lease may carry the network in (four calls, the checkpoints out of the tree)
#        instead of training it;
#   6. JOBS=bias S3=330 H3=360 ... 3, carry inc5, inc6, wheels_peers, checkpoints/dit_fashion_mnist back in the tree
#      (173.8 s) -> results/plan_dit_inception_bias_gpu.csv again, now with the paired columns: measured and plain
#      predicted values equal the H200's rows bit for bit; the paired Inception prediction 0.97-1.07x the measured;
#   7. the lloyd_max stage, (a) above (118.4 s) -> benchmarks/gpu_h100_lloyd_flat.json: 128 lanes slower than 256;
#      whole 12B model 92.8 s on the H100;
#   8. plan_runtime.py's working bytes at 1, 64 and 1,000 samples (41.8 s) -> results/plan_runtime_gpu_b{1,64,1000}.json;
#   9. DATASET=fashion_mnist JOBS=plan NO_BENCH=1 PAPER_BUDGETS=3 MATCH_PEER=hqq:g128 PAPER_PEERS=hqq:g128,rule:equal_mass
#      PAPER_SAMPLES=5000 PAPER_PAIRS=1000 NUMBA_THREADING_LAYER=omp S2=360 H2=480 ... 2 (481.3 s): the plan at 3
#      and at HQQ g128's 2-bit size (2.2728), then the deadline, before the plan at 3.473 and any peer ->
#      results/plan_paper_arch_fashion_mnist.csv (3 rows) and its choices.
# Planned next: the FashionMNIST network carried in (.carry/pa_fashion_mnist1..4, four calls with the checkpoints
#   out of the tree, while this workspace lasts; else the two training calls), then 3' and 4' above, repeated until
#   the rows are in: the 50,000-sample FIDs took 486 s on the H200 and the 5k full-precision row 2.3x the H200's time
#   on an H100, so on an H100 neither 50k row nor the 200-NFE arm fits one call, and gpu_paper_arch.py now samples
#   them in parts (--part-evals, ~60 s each on the H200) that the next call resumes (since this lease); the
#   FashionMNIST plan's peers at 3 and 2.2728 (JOBS=plan with the same arguments and
#   KEEP_ROWS=results/plan_paper_arch_fashion_mnist.csv: its three rows are done rows).
# Thirty-eighth period (2026-12-06): the first batch was refused twice over (three calls: "the working tree is larger
#   than 64 MiB" with a 56,004,865-byte piece beside the 10.96 MB tree: the limit counts more than the files' bytes;
#   then "could not be started" and five "none asked for": 331 s of the budget). With 18 more tracked files out of
#   the tree (tests/data, results/figures/*.png, results/grids_*.npz, results/sensitivity_*.csv,
#   checkpoints/classifier_mnist; 7.6 MB in 4 KiB blocks) an H100 80GB HBM3 came at the next try, and the lease ran:
#   1-4. `DATASET=fashion_mnist bash scripts/gpu_lease.sh carry`, one call per .carry/pa_fashion_mnist1..4 (0.2-0.9 s
#        each): the network joined on the machine, SHA-256 e9d320111eef..., no training;
#   5-6. the same, carrying fmnist_train + inc1-2, then inc3-5 + plan_test + wheels_dask (1.1 s);
#   7. KEEP_ROWS=results/plan_paper_arch_fashion_mnist.csv DATASET=fashion_mnist JOBS='plan paper' NO_BENCH=1
#      PAPER_BUDGETS=3 MATCH_PEER=hqq:g128 PAPER_PEERS=hqq:g128,rule:equal_mass KINDS='fp nfe' FID_FIRST=1
#      PAPER_SAMPLES=5000 PAPER_PAIRS=1000 NUMBA_THREADING_LAYER=omp MEMFMT=contiguous S2=500 H2=570 ... 2, with a
#      copier of the rows to $OUT (carry inc6, wheels_peers; 540 s): the plan's sensitivity 14.3 s, fit 84.2 s, the
#      plan at 3.473 (78.7 s) and its cell, the plan at 4.2685 (200.3 s; HQQ g128's 4-bit size, which MATCH_PEER adds),
#      the peers quantized; beside it the paper's evaluation sampled the 5k full-precision rows again (ours, paper);
#   8. the same (571 s): the 50,000 full-precision samples in five parts (493.8 s) and seven peer cells (~97 s each);
#   9. the same with S2=215 H2=245 (246 s): both 50k FIDs and the last two peer cells, and one part of five of the
#      200-NFE arm (99.0 s), lost with the machine.
#   -> results/plan_paper_arch_fashion_mnist.csv (13 rows: the plan at 3, 2.2728, 3.473, 4.2685 and HQQ g128 and
#      rule:equal_mass at each) and its choices at 3.473 and 4.2685; results/pending/paper_arch_fashion_mnist.csv 24 of
#      25 rows. Given back with 33 s left.
# Planned next: the 200-NFE arm of the FashionMNIST network (~500 s on an H100 in parts; the network carried in as
#   above, now in five calls of .carry/pa_fashion_mnist1..5 (50,000,000-byte pieces since this period: they fit
#   beside the tree with only the three model checkpoints out), the data and Inception as in 5-6, then `DATASET=fashion_mnist MEMFMT=contiguous JOBS=paper NO_BENCH=1 KINDS=nfe S2=500 H2=570 bash
#   scripts/gpu_lease.sh 2`, once or twice), after which its 25 rows leave results/pending/.
#   With ~3 min to spare (any card, no carry but .carry/wheels_dask): the equal_mass radix path of
#   benchmarks/gpu_triton.py (path="radix", added after this lease; checked only under Triton's interpreter so far),
#   `bash scripts/gpu_lease.sh carry >/dev/null; PYTHONPATH=.:runs/pylib:runs/pydeps python3 benchmarks/gpu.py
#   --only equal_mass --out "$OUT/bench"`: its three launch configurations against the sorting kernel and the floor,
#   each row checked equal to the CPU quantizer and to the sorting kernel.
# Thirty-ninth period (2026-12-06): .carry/ was gone with the checkout (pa_fashion_mnist1..5 too), so the network was
#   trained again. nvidia-h100-x1 was refused twice ("could not be started", then "none tried for 10 min"); a call for
#   nvidia-h200 got an H100 80GB HBM3, and the calls ran back to back, the three model checkpoints out of the tree:
#   1. DETERMINISTIC=1 DATASET=fashion_mnist MEMFMT=contiguous TRAIN_MIN=9.3 ... 1 (carry fmnist_train, wheels_dask,
#      plan_test, inc1; 583.8 s): the cap stopped it at step 3,049;
#   2. DATASET=fashion_mnist ... carry (carry inc2-4; 1.5 s);
#   3. RESUME=1 (the same) ... 1, then DATASET=fashion_mnist MEMFMT=contiguous JOBS=paper NO_BENCH=1 KINDS=nfe S2=370
#      H2=430 ... 2 with a copier of the rows to $OUT (carry inc5, inc6; 420.9 s): network e9d320111eef... bit for bit a
#      third time (643.2 s of training); 24 rows of results/pending/ copied in as done; the 200-NFE arm alone, five parts
#      of 50.6-51.6 s (254.2 s; 99 s a part last period, beside the plan) -> the 25th row;
#   4. `bash scripts/gpu_lease.sh carry >/dev/null; ... benchmarks/gpu.py --only equal_mass --out $OUT/bench` (53.7 s)
#      -> benchmarks/gpu_h100_equal_mass_radix.json: the radix path's first GPU run, exact, 7.14x the floor back to back
#      (tile 1024, 4 warps) against the sorting kernel's 32.85x;
#   5. the same with --only lloyd_max (116.8 s): the whole 12B model 93.0 s, as before (92.8 s); not kept.
#   -> results/paper_arch_fashion_mnist.csv (25 rows; the 593ee5d0 H200 network's table it replaces kept apart).
#   Given back with 312 s left. The 200-NFE row has no paired interval: with KINDS=nfe the machine had no reference
#   samples (the 5k full-precision row was carried in as done), and the arm was measured unpaired without a word;
#   gpu_paper_arch.py now refuses that (add fp) and counts a paired row without its change as not done.
# Planned next (issue 13, the NFE check's interval; ~1,000 s on an H100): before the lease, copy
#   results/paper_arch_fashion_mnist.csv and its _train.json into results/pending/ (uncommitted: they travel with the
#   tree); then calls 1-3 above with KINDS='fp nfe' in call 3: the reference sampled again (~34 s), the 200-NFE arm
#   again in five parts (~254 s), paired. Keep the committed reference row (the cells' intervals are against it) and
#   take the new arm's row, whose interval is against this lease's reference samples.
# Fortieth period (2026-12-06; nvidia-h200 refused three times, 374 s of the budget, then an H100 80GB HBM3; given
#   back with 539 s left): (b) below for the DiT, the three model checkpoints and results/plan_dit.csv out of the tree:
#   1. `bash scripts/gpu_lease.sh carry` (carry inc1-3, wheels_dask; 0.6 s); 2. the same (carry inc4-6; 0.4 s);
#   3. checkpoints/dit_fashion_mnist back in the tree, `JOBS=small SMALL_MODELS=dit PEER_FAMILIES=all MATCH_PEER=hqq:g128
#      NO_BENCH=1 S2=500 H2=575 bash scripts/gpu_lease.sh 2` (carry plan_test, wheels_peers; 535.5 s): the plan's
#      sensitivity 2.6 s and fit 24.0 s, then 47 rows at ~11.4 s a sampled cell before the deadline;
#   4. the same (carry wheels_peers; 180.4 s): 44 rows; 5. the same with MATCH_PEER=hqq:g64 S2=470 H2=545 (140.6 s): 43.
#   -> results/plan_dit.csv, 134 rows (every peer family at every budget, the matched ones included; 50 before), every
#      row in both feature nets with the paired prediction; the 50 earlier rows' classifier FIDs repeat bit for bit
#      (H200 then, H100 now), and the plan's choices are the same at every budget (their sensitivities differ in
#      the 8th digit).
#   Then two more calls with nvidia-h200 and no kind named (20:00 and 20:11) were refused ("could not be started"),
#   180 s of the budget; 359 s left, too few for a start (~190 s) and the variants' run planned below.
# Forty-first period (2026-12-06, 21:37-22:05; an H100 80GB HBM3 at the first call, 33 s to start; given back with 68 s
#   of the 1,800 left). The three model checkpoints, results/plan_mnist.csv and results/plan_fashion_mnist.csv out of
#   the tree; calls 1-2 of the fortieth period (0.6 s, 0.4 s); then, the three checkpoints back in the tree:
#   3. `JOBS="small variants" SMALL_MODELS="mnist fashion_mnist" PEER_FAMILIES=all MATCH_PEER=hqq:g128 NO_BENCH=1 S2=500
#      H2=575 VARIANTS="--models dit --budgets 4.3242,2.3369 --groupings any,flat --floors 1,2,3 --inception
#      runs/inception/default_1.pt --out $OUT/plan_variants_inception_dit_gpu.json" bash scripts/gpu_lease.sh 2` (carry
#      plan_test, wheels_peers; 576.0 s): the variants' run side by side with the MNIST UNet's table, 435.2 s for its
#      30 rows (16 distinct variants) -> results/plan_variants_inception_dit_gpu.json;
#   4. JOBS=small alone, the same otherwise (carry wheels_peers; 377.5 s): the MNIST UNet's hqq:g128 sizes complete, 96 rows;
#   5. the same with MATCH_PEER=hqq:g64 S2=505 H2=570 (531.6 s): the MNIST UNet complete, 138 rows, then 28 of the
#      FashionMNIST UNet's; 6. SMALL_MODELS=fashion_mnist S2=150 H2=185 (170.5 s): 47 more, 21 of the hqq:g64 run left.
#   -> results/plan_mnist.csv, 138 rows (66 before), every row in both feature nets with the paired prediction: 62 of the
#      66 earlier rows repeat their classifier FIDs bit for bit; the 4 plan rows at 2, 2.5, 2.3582 and 2.6062 bits move
#      in the 5th digit (their weighted_lloyd codebooks follow the sensitivity, which moved in the 8th digit; the same
#      choices, weight MSE equal to 7 digits). results/pending/plan_fashion_mnist.csv, 75 rows (its README).
# Planned next (issue 12, the FashionMNIST UNet's table in both feature nets, ~500 s of calls after the start): move
#   results/plan_fashion_mnist.csv out of the tree and put results/pending/plan_fashion_mnist.csv in its place (its rows
#   are then done rows); the three checkpoints out for calls 1-2 above, then checkpoints/fashion_mnist back, carrying
#   plan_test and wheels_peers: `JOBS=small SMALL_MODELS=fashion_mnist PEER_FAMILIES=all MATCH_PEER=hqq:g64 NO_BENCH=1
#   S2=500 H2=575 bash scripts/gpu_lease.sh 2` (21 rows), then the same with MATCH_PEER=hqq:g128 (~40 rows) until none is
#   left. Side by side in the first of those calls (JOBS="small variants", as call 3 of the forty-first period ran; the
#   MNIST checkpoint in the tree too): VARIANTS="--models mnist --budgets 4,4.3424,4.5812 --groupings any,flat --floors
#   1,2,3 --inception runs/inception/default_1.pt --out $OUT/plan_variants_inception_mnist_gpu.json", where the MNIST
#   plan loses to HQQ b4 beyond the intervals in Inception's features: whether a variant it builds would win, as the
#   DiT's flat one does at 4.3242 (~11 s a distinct variant, ~8 distinct a budget on the DiT). CPU dry run of that
#   command at --budgets 4.3424 --device cpu --samples 64 --pairs 32 --plan-samples 32 --real-images 256: sensitivity and
#   fitting 91.8 s, then 12 of the budget's 18 rows (7 distinct variants) before its 20-minute cap, each row in both nets.
#   plan_paper_arch_h100.csv (16 rows) can get the paired columns only on its deterministic network trained again;
#   plan_paper_arch.csv and plan_paper_arch_early.csv never can (H200 networks trained without --deterministic, gone).
# Forty-second period (2026-12-07, 00:34-02:41): no machine. Eighteen calls for call 1 of the lease above (carrying
#   inc1-3 and wheels_dask, the three model checkpoints out of the tree), 5-15 minutes apart, with no kind, with
#   nvidia-h200 and with nvidia-h100-x1: sixteen answered "could not be started" (90 s of the budget each, once 72 s and
#   once 181 s), two "none was asked for" (15 s each); between them status said sessions beside this one were refused too.
#   1,543 s of the 1,800 went that way and nothing ran; the 257 s left were too few for the ~600 s the plan above needs
#   after a start. The plan above stands unchanged.
# Forty-third period (2026-12-07, 03:36-05:06): no machine again. Twenty-seven calls for the lease above, the three model
#   checkpoints out of the tree and the pending FashionMNIST rows in place of the committed table: three batches of its
#   five calls (03:36-03:51), then calls 1-2 (03:57), then call 1 alone, ten times 5-6 minutes apart (a call alone, so
#   that a refused start costs no 15 s calls after it). Fourteen answered "could not be started" (75-151 s of the
#   budget each), thirteen "none was asked for" (15 s each): 1,486 s of the 1,800, nothing ran; a twenty-eighth call,
#   at 314 s left, was refused for the budget. status named nvidia-h200 and nvidia-h100-x1 by turns, with the same
#   answer. The plan above stands unchanged; a lease that comes with less than its ~1,150 s runs call 3 alone with
#   S2/H2 cut to what is left (the rows done are kept: the 41st period's 170-s call added 47 rows).
# Forty-fourth period (2026-12-07): five calls for call 1 of the lease above refused ("could not be started", 90-181 s
#   of the budget each; one "none was asked for", 15 s) from 06:34 to 07:21; the sixth, at 07:33 with 1,064 s left,
#   got an H100 80GB HBM3 (811 s held at its first answer: the refusals count as held time). Then, back to back:
#   1. `bash scripts/gpu_lease.sh carry` (carry inc1-3, wheels_dask; 0.6 s); 2. the same (carry inc4-6; 0.4 s);
#   3. the three checkpoints back, call 3 above as written (carry plan_test, wheels_peers; 575.9 s): the hqq:g64 run
#      complete (21 rows: 75 -> 96) and the MNIST variants' run to its hard stop (535.1 s): 36 rows, budgets 4 and
#      4.3424 complete, 4.5812 not written -> results/plan_variants_inception_mnist_gpu.json;
#   4. MATCH_PEER=hqq:g128 with S2=280 H2=320 for the 386 s left (carry wheels_peers; 320.7 s): sensitivity 6.9 s,
#      fit 30.6 s, 15 rows (96 -> 111) at ~12 s a row. Given back with 55 s left.
#   -> results/pending/plan_fashion_mnist.csv, 111 rows (27 left: the peers at 3.6206 and 4.3424); its 60 rows shared
#      with the committed table repeat their classifier FIDs bit for bit; the committed table stays until the rest.
# Forty-fifth period (2026-12-07, an H100 80GB HBM3 at the first call; the whole 1,800 s, given back with 27 s left):
#   issue 12's planned lease as written: the pending FashionMNIST table in place of the committed one, the three
#   checkpoints out for calls 1-2 (0.5 s, 0.4 s), back for call 3 (487.6 s): the FashionMNIST table's last 27 rows
#   (~12 s each) and the MNIST variants at 4.5812 side by side (324.5 s, 18 rows)
#   -> results/plan_fashion_mnist.csv, 138 rows (the 62 of the table it replaced repeat their classifier FIDs bit for
#      bit), the choices at 2.3582, 3.6206 and 4.3424 of this run; results/plan_variants_inception_mnist_4.5812_gpu.json.
#   Then issue 13's MNIST lease 1 with the 1,215 s left (the machine had gone back: ~100 s to start again), the three
#   checkpoints out of the tree:
#   4. `DETERMINISTIC=1 MEMFMT=contiguous TRAIN_MIN=9.3 bash scripts/gpu_lease.sh 1` (carry harness_data, wheels_dask,
#      plan_test, inc1; 573.8 s): step 3,055 at the cap, 1,401 images/s;
#   5. `RESUME=1 DETERMINISTIC=1 MEMFMT=contiguous TRAIN_MIN=5 ... 1` (carry inc2-4; 96.0 s): 15 epochs, 3,510 steps,
#      641.5 s of training, final loss 0.17170, checkpoint e8d69b926a8b..., network 48b4549de6e5...;
#   6. a copier of the rows to $OUT, then `MEMFMT=contiguous JOBS=paper NO_BENCH=1 KINDS='fp cell' FID_SAMPLES=0 S2=370
#      H2=400 bash scripts/gpu_lease.sh 2` (carry inc5-6; 400.6 s): the 5k full-precision row (31.3 s) and 8 cells
#      (29-39 s each) -> results/pending/paper_arch_mnist{.csv,_train.json}, 9 of 25 rows.
# Forty-sixth period (2026-12-07, a second session that day): six calls for nvidia-h100-x1 refused between 12:15
#   and 12:48 (four could not start a machine, two were 'none asked for'; 391 s of the 1,800 in all); then a
#   call asking for nvidia-h200 got an H100 80GB HBM3:
#   1. `bash scripts/gpu_lease.sh carry >/dev/null; PYTHONPATH=.:runs/pylib:runs/pydeps python3 benchmarks/gpu.py
#      --only equal_mass --out "$OUT/bench"` (carry wheels_dask; 46.8 s): the radix path at 7.09x the floor back to
#      back (7.14x before), 8.37x as one call, every configuration equal to the CPU;
#   then the planned issue-13 lease, the three checkpoints out of the tree:
#   2. `DETERMINISTIC=1 MEMFMT=contiguous TRAIN_MIN=9.3 bash scripts/gpu_lease.sh 1` (carry harness_data,
#      wheels_dask, plan_test, inc1; 570.9 s): step 3,075 at the cap;
#   3. `RESUME=1 DETERMINISTIC=1 MEMFMT=contiguous TRAIN_MIN=5 ... 1` (carry inc2-4; 95.8 s): checkpoint e8d69b92...,
#      network 48b4549de6e5..., the first lease's network bit for bit; the 9 pending rows copied in as done;
#   4. a copier of the rows to $OUT, then `MEMFMT=contiguous JOBS=paper NO_BENCH=1 KINDS='fp cell' FID_SAMPLES=0
#      S2=545 H2=585 bash scripts/gpu_lease.sh 2` (carry inc5-6; 509.9 s): the reference again and the 12 cells left
#      (479.8 s) -> results/pending/paper_arch_mnist.csv, 21 of 25 rows; given back with 138 s left.
# Forty-seventh period (2026-12-07, a third session that day): eight calls refused between 14:57 and 15:36 (for
#   nvidia-h100-x1, and once nvidia-h200: four 'could not be started', four 'none asked for'; 586 s of the 1,800);
#   then on an H100 80GB HBM3 (its start ~87 s), the three checkpoints out of the tree, each command
#   guarded by `nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H100 || exit 3` (an H200 trains another
#   network):
#   1. `DETERMINISTIC=1 MEMFMT=contiguous TRAIN_MIN=9.3 bash scripts/gpu_lease.sh 1` (carry harness_data, wheels_dask,
#      plan_test, inc1; 575.1 s): step 3,082 at the cap;
#   2. `RESUME=1 DETERMINISTIC=1 MEMFMT=contiguous TRAIN_MIN=5 ... 1` (carry inc2-4; 93.5 s): network 48b4549de6e5...,
#      the first lease's bit for bit a third time; the 21 pending rows copied in as done;
#   3. a copier of the rows to $OUT, then `MEMFMT=contiguous JOBS=paper NO_BENCH=1 KINDS='fp nfe' FID_SAMPLES=0 S2=320
#      H2=385 bash scripts/gpu_lease.sh 2` (carry inc5-6; 358.3 s): the reference again (30.4 s), the NFE check's
#      20-NFE arm (the paper's protocol at 5,000 samples) and its 200-NFE arm (251 s of sampling): 23 of 25 rows.
# Forty-eighth period (2026-12-07, a fourth session that day): no H100 came in time. Thirteen calls refused between
#   17:48 and 19:13 (ten for nvidia-h100-x1 until 18:48, then three for nvidia-h200: eight 'could not be started',
#   ~90 s each for an H100 and ~180 s for an H200; five 'none asked for', 15 s each), 976 s of the 1,800; with 1,199 s
#   left at 18:48 the lease below no longer fitted. The fourteenth call (nvidia-h200 named, for `benchmarks/gpu.py
#   --only equal_mass,uniform_minmax,sensitivity` on the issue's card) got an H100 80GB HBM3 (its start ~87 s) and
#   stopped at its guard (0.3 s); given back with 731 s left.
# Planned next (issue 13, the MNIST network's last two rows; one lease, on an H100 only, started only with at least
#   ~1,450 s of budget left): the three checkpoints out of the tree; calls 1-2 above again (~670 s); then, carrying
#   inc5-6 with a copier of the rows to $OUT, `MEMFMT=contiguous JOBS=paper NO_BENCH=1 KINDS=fp S2=560 H2=590 bash
#   scripts/gpu_lease.sh 2`: since the forty-eighth period `--kinds fp` alone keeps the carried 5,000-sample reference
#   (no row paired with it is asked for), so the call goes straight to the two 50,000-sample FIDs, one sample set:
#   ~581 s on an H100 by the FashionMNIST network's rows (548.8 s ours, 32.4 s the paper's), not the ~500 s once
#   assumed. Once complete, `python scripts/promote_pending.py --dataset mnist` moves the rows to
#   results/paper_arch_mnist.csv, the current table kept apart as paper_arch_mnist_794236c6.csv.
# Forty-ninth period (2026-12-07, a fifth session that day): the issue-13 lease above waited for an H100 from 21:11 and
#   never fitted: thirteen calls for nvidia-h100-x1 (six 'could not be started', ~90 s each; seven 'none asked for',
#   15 s each) and six for nvidia-h200 (four 'could not be started', ~180-195 s each; two 'none asked for') to 22:50,
#   1,381 s of the 1,800. At 22:55, with 419 s left, an H100 80GB HBM3 came (start ~95 s), and issue 12's two-way plan
#   ran instead, the three model checkpoints out of the tree for calls 1-2:
#   1. `bash scripts/gpu_lease.sh carry` (carry inc1-3, wheels_dask; 0.8 s); 2. the same (carry inc4-6; 0.5 s);
#   3. `COMP_MODELS="mnist fashion_mnist" COMP_BUDGETS=3 PEER_FAMILIES=hqq:g128 NO_BENCH=1 JOBS=comp S2=215 H2=265
#      bash scripts/gpu_lease.sh 2` (carry plan_test, wheels_peers, wheels_dask; 160.6 s): the MNIST UNet's plan at
#      3 bits with roundings nearest,compensated (sensitivity 8.7 s, fit 42.1 s, moments 3.6 s, plan 27.1 s; 3 rows in
#      35.6 s), FashionMNIST left at the deadline -> results/plan_mnist_compensated.csv (model mnist_compensated),
#      results/plan_choices_mnist_compensated_3.csv. Given back with 122 s left.
# Planned next (issue 12, ~600 s after the start; either card): the three checkpoints out for calls 1-2 above, back for
#   `COMP_MODELS="fashion_mnist dit mnist" COMP_BUDGETS=2,2.5,3,4 PEER_FAMILIES=hqq:g128 NO_BENCH=1 JOBS=comp S2=500
#   H2=570 bash scripts/gpu_lease.sh 2` (carry plan_test, wheels_peers, wheels_dask); its rows' model renamed
#   <model>_compensated, merged by key into results/plan_<model>_compensated.csv. Then the issue-13 lease above, on an
#   H100, when a session opens with one.
# Fiftieth period (2026-12-08): the first call, for nvidia-h100-x1, got an H100 80GB HBM3 at once; the issue-13 lease
#   above, the three checkpoints out of the tree and each command guarded by the H100 check:
#   1. `DETERMINISTIC=1 MEMFMT=contiguous TRAIN_MIN=9.3 bash scripts/gpu_lease.sh 1` (carry harness_data, wheels_dask,
#      plan_test, inc1; 580.8 s): step 2,960 at the cap (1,358 images/s);
#   2. `RESUME=1 DETERMINISTIC=1 MEMFMT=contiguous TRAIN_MIN=5 ... 1` (carry inc2-4; 129.0 s): network 48b4549de6e5...,
#      the first lease's bit for bit a fourth time (662.9 s of training in all); the 23 pending rows copied in as done;
#   3. a copier of the rows to $OUT, then `MEMFMT=contiguous JOBS=paper NO_BENCH=1 KINDS=fp S2=560 H2=590 bash
#      scripts/gpu_lease.sh 2` (carry inc5-6; 370.7 s): both 50,000-sample full-precision FIDs, ours and the paper's
#      protocol of one sample set -> 25 of 25 rows, promoted to results/paper_arch_mnist.csv (scripts/promote_pending.py);
#   then, the checkpoints back in the tree, issue 12's two-way plan on the same warm machine:
#   4. `COMP_MODELS="fashion_mnist dit mnist" COMP_BUDGETS=2,2.5,3,4 PEER_FAMILIES=hqq:g128 NO_BENCH=1 JOBS=comp S2=400
#      H2=450 bash scripts/gpu_lease.sh 2` (carry plan_test, wheels_peers, wheels_dask; 344.9 s): the FashionMNIST UNet
#      at the four budgets with HQQ g128 -> results/plan_fashion_mnist_compensated.csv and its choices; the DiT and
#      MNIST left at the deadline. Given back with 260 s left.
# Planned next (issue 12, either card, ~600 s after the start): the three checkpoints out for two carry calls (inc1-3,
#   inc4-6), back for `COMP_MODELS="dit mnist" COMP_BUDGETS=2,2.5,3,4 PEER_FAMILIES=hqq:g128 NO_BENCH=1 JOBS=comp
#   S2=500 H2=570 bash scripts/gpu_lease.sh 2` (carry plan_test, wheels_peers, wheels_dask); rows merged by key into
#   results/plan_<model>_compensated.csv (model <model>_compensated).
# the trained network carried back in pieces (scripts/gpu_checkpoint_parts.sh; one per call), joined once all are in;
# the pieces are named by data set (.carry/pa_mnist1.., .carry/pa_fashion_mnist1..), so that a network is never
# joined under the other data set's name
for d in .carry/pa_${DATASET}[0-9]*; do  # (a piece left on the disk by an earlier call is not joined again)
  [ -d "$d" ] && [ ! -f "runs/paper_arch_$DATASET/model.safetensors" ] \
    && bash scripts/gpu_checkpoint_parts.sh join "$d" "runs/paper_arch_$DATASET"
done
# rows already measured on this network (results/pending/, tracked until the network's rows are complete) are done
# rows: copied in once, and only when their train record names the network joined here
pend=results/pending/paper_arch_$DATASET
if [ -f "$pend.csv" ] && [ -f "runs/paper_arch_$DATASET/train.json" ] && [ ! -f "runs/paper_arch_$DATASET/paper_arch_$DATASET.csv" ] \
   && python3 -c "import json, sys; a, b = (json.load(open(f))['model_sha256'] for f in sys.argv[1:]); sys.exit(a != b)" \
        "${pend}_train.json" "runs/paper_arch_$DATASET/train.json"; then
  cp "$pend.csv" "runs/paper_arch_$DATASET/paper_arch_$DATASET.csv" && echo "$(( $(wc -l < "$pend.csv") - 1 )) rows of $pend.csv done"
fi
faster() {  # the memory format of the larger $1 in the probe's results (MEMFMT overrides; contiguous without a probe)
  [ -n "${MEMFMT:-}" ] && { echo "$MEMFMT"; return; }
  python3 -c "import json; r = json.load(open('runs/paper_arch_$DATASET/probe.json'))
print(max(r, key=lambda x: x['$1'])['memory_format'])" 2>/dev/null || echo contiguous
}
[ -d .carry/harness_data ] && cp -r .carry/harness_data/. runs/data_mnist/
[ -d .carry/fmnist_data ] && cp -r .carry/fmnist_data/. runs/data_fashion_mnist/
[ -d .carry/fmnist_train ] && cp -r .carry/fmnist_train/. runs/data_fashion_mnist/  # train split only (call 1)
if [ -f .carry/plan_test/fashion_mnist.npz ] && [ -f runs/data_fashion_mnist/fashion_mnist.npz ]; then
  python3 -c "  # add the test split (carried in call 2) to the train-only file: the checksums are per split
import numpy as np; f = 'runs/data_fashion_mnist/fashion_mnist.npz'; z = dict(np.load(f))
z.update({} if 'x_test' in z else dict(np.load('.carry/plan_test/fashion_mnist.npz'))); np.savez(f + '.tmp.npz', **z)" \
    && mv runs/data_fashion_mnist/fashion_mnist.npz.tmp.npz runs/data_fashion_mnist/fashion_mnist.npz
fi
[ -d .carry/plan_test ] && cp .carry/plan_test/* runs/plan_data/
if [ -f .carry/wheels_peers/site.tgz ] && [ ! -f runs/pylib/.unpacked ]; then
  tar xzf .carry/wheels_peers/site.tgz -C runs/pylib && touch runs/pylib/.unpacked
fi
if [ -d .carry/wheels_dask ] && [ ! -f runs/pydeps/.unpacked ]; then
  python3 -c "import glob, zipfile; [zipfile.ZipFile(w).extractall('runs/pydeps') for w in glob.glob('.carry/wheels_dask/*.whl')]" \
    && touch runs/pydeps/.unpacked
fi
export PYTHONPATH=.:runs/pylib:runs/pydeps
# the small models' rows already measured are done rows; REPLAN=1 drops their plan rows first, so that the
# plan is measured again (after a change of its defaults) beside the peers' kept rows
for m in ${SMALL_MODELS:-dit}; do
  [ -f runs/results/plan_$m.csv ] || [ ! -f results/plan_$m.csv ] && continue
  python3 -c "import csv, sys; rows = list(csv.DictReader(open(sys.argv[1]))); keep = [r for r in rows if not (sys.argv[3] and r['method'] == 'plan')]
w = csv.DictWriter(open(sys.argv[2], 'w', newline=''), fieldnames=list(rows[0])); w.writeheader(); w.writerows(keep)" \
    results/plan_$m.csv runs/results/plan_$m.csv "${REPLAN:-}"
done
# KEEP_ROWS (a committed plan table of the paper network, e.g. results/plan_paper_arch_det.csv): its rows are done rows
# here, copied in once, and only when they were measured on the network trained here (the same checkpoint SHA-256), so
# that a network trained again bit for bit (train --deterministic) gets only what its table lacks (its done plans and
# peers are not made again: gpu_plan_eval.prepare(done=))
paper_model=paper_arch; [ "$DATASET" = mnist ] || paper_model=paper_arch_$DATASET
if [ -n "${KEEP_ROWS:-}" ] && [ -f "runs/paper_arch_$DATASET/train.json" ] && [ ! -f "runs/results/plan_$paper_model.csv" ]; then
  mkdir -p runs/results && python3 -c "import json, sys
from fmq_theory.results.schema import PLAN
src, record, dst, model = sys.argv[1:]
rows, sha = PLAN.read(src), json.load(open(record))['checkpoint_sha256']
if {r['checkpoint_sha256'] for r in rows} == {sha}:
    PLAN.write(dst, [{**r, 'model': model} for r in rows]); print(f'{len(rows)} rows of {src} done')
else:
    print(f'{src}: measured on another network than the one trained here ({sha[:8]}): not copied')" \
    "$KEEP_ROWS" "runs/paper_arch_$DATASET/train.json" "runs/results/plan_$paper_model.csv" "$paper_model"
fi
# the UNet checkpoints stay on the machine's disk, so that later calls may leave them out of the tree
for m in mnist fashion_mnist; do
  [ -f checkpoints/$m/model.safetensors ] && mkdir -p runs/ckpt && cp -r checkpoints/$m runs/ckpt/
done
CKPT=(); for m in mnist fashion_mnist; do [ -f runs/ckpt/$m/model.safetensors ] && CKPT+=(--checkpoint "$m=runs/ckpt/$m"); done
INC=(); [ -f runs/inception/default_1.pt ] && INC=(--inception runs/inception/default_1.pt)
echo "stage $STAGE: inception parts $(ls runs/inception_parts | tr '\n' ' ') -> ${INC[*]:-no inception yet}"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
FILTER="Failed to load\|kernels-community\|_pytree.py\|it/s]\|s/it]\|batch/s]\|s/batch]\|tensor/s]\|s/tensor]"

plan_small() {  # $1 seconds: SMALL_MODELS (space-separated; the FashionMNIST DiT by default)
  FMQ_DATA_DIR=runs/plan_data timeout -k 5 "$HARD_S" python3 scripts/gpu_plan_eval.py \
    --models "$(echo ${SMALL_MODELS:-dit} | tr ' ' ,)" "${CKPT[@]}" --families "${PEER_FAMILIES:-all}" \
    --plan-families "${PLAN_FAMILIES:-optimal,minmax,half_quadratic}" ${MATCH_PEER:+--match-peer "$MATCH_PEER"} \
    --samples "${SAMPLES:-5000}" --n-boot-inception 10 --deadline "$1" --out-dir runs/results --work runs/plan_work \
    "${INC[@]}" 2>&1 | grep --line-buffered -v "$FILTER"
}
plan_comp() {  # $1 seconds: the plan offered compensated codes (gpu_plan_eval.py --plan-roundings) on COMP_MODELS and
  # COMP_BUDGETS beside HQQ g128 (PEER_FAMILIES), into a table of its own (runs/results_comp: the rows keep the method 'plan')
  FMQ_DATA_DIR=runs/plan_data timeout -k 5 "$HARD_S" python3 scripts/gpu_plan_eval.py \
    --models "$(echo ${COMP_MODELS:-mnist fashion_mnist dit} | tr ' ' ,)" "${CKPT[@]}" --families "${PEER_FAMILIES:-hqq:g128}" \
    --budgets "${COMP_BUDGETS:-2,2.5,3,4}" --plan-roundings nearest,compensated --samples "${SAMPLES:-5000}" --n-boot-inception 10 \
    --deadline "$1" --out-dir runs/results_comp --work runs/comp_work "${INC[@]}" 2>&1 | grep --line-buffered -v "$FILTER"
}
plan_paper() {  # $1 seconds: the paper's network of $DATASET, once trained (fewer families: 55.7M weights each)
  local model=$paper_model
  [ -f runs/paper_arch_$DATASET/train.json ] || { echo "plan_paper: no trained $DATASET network yet"; return; }
  [ -f checkpoints/classifier_$DATASET.safetensors ] || { echo "plan_paper: checkpoints/ not in the tree (the FID's classifier)"; return; }
  FMQ_DATA_DIR=runs/plan_data timeout -k 5 "$HARD_S" python3 scripts/gpu_plan_eval.py --models "$model" \
    --checkpoint "$model=runs/paper_arch_$DATASET" --budgets "${PAPER_BUDGETS:-2,3,4}" ${MATCH_PEER:+--match-peer "$MATCH_PEER"} \
    --families "${PAPER_PEERS:-hqq:g64,gguf,nf4,naive:uniform_minmax,rule:uniform_mse}" --samples "${PAPER_SAMPLES:-2000}" \
    --pairs "${PAPER_PAIRS:-500}" --batch-size 1000 --n-boot-inception 10 --deadline "$1" --out-dir runs/results \
    --plan-batches-per-pass "${PLAN_BPP:-1}" ${NO_PLAN:+--no-with-plan} \
    --work runs/plan_work "${INC[@]}" 2>&1 | grep --line-buffered -v "$FILTER"
}
plan_bias() {  # $1 seconds: the DiT's peers measured again into a fresh table, with the sampled prediction's bootstrap
  # bias in both feature spaces (predicted_dfid[_inception]_bias), to test the correction against the measured change
  FMQ_DATA_DIR=runs/plan_data timeout -k 5 "$HARD_S" python3 scripts/gpu_plan_eval.py --models dit --no-with-plan \
    --families "${BIAS_PEERS:-rule:uniform_minmax,naive:uniform_minmax,hqq:g128}" --budgets "${BIAS_BUDGETS:-2,3,4}" \
    --samples "${BIAS_SAMPLES:-5000}" --pairs "${BIAS_PAIRS:-1000}" --n-boot-inception "${BIAS_BOOT:-20}" --deadline "$1" --out-dir runs/results_bias \
    --work runs/bias_work "${INC[@]}" 2>&1 | grep --line-buffered -v "$FILTER"
}
plan_variants() {  # every variant of the plan measured (scripts/gpu_plan_variants.py; its arguments in VARIANTS)
  FMQ_DATA_DIR=runs/plan_data timeout -k 5 "$HARD_S" python3 scripts/gpu_plan_variants.py "${CKPT[@]}" ${VARIANTS:-} \
    2>&1 | grep --line-buffered -v "$FILTER"
}
paper_eval() {  # $1 seconds
  FMQ_DATA_DIR=runs/data_$DATASET timeout -k 5 "$HARD_S" python3 scripts/gpu_paper_arch.py evaluate --dataset "$DATASET" \
    --fid-samples "${FID_SAMPLES:-50000}" --nfe-samples "${NFE_SAMPLES:-5000}" --samples "${PAPER_SAMPLES:-5000}" \
    --latent-images 10000 --bits ${BITS:-2 3 4 8} --kinds ${KINDS:-fp cell nfe} --batch-size 1000 ${FID_FIRST:+--large-fid-first} --memory-format "$(faster sample_evals_per_s)" \
    --budget-s "$1" "${INC[@]}" 2>&1 \
    | grep --line-buffered -v "$FILTER"
}

start=$(date +%s)
case "$STAGE" in
  carry)  # nothing but the set-up above: a carried piece of the network kept on the disk, joined once all are in
    ls -la "runs/paper_arch_$DATASET" 2>/dev/null
    exit 0 ;;
  send)  # the trained network's parts to bring here (PARTS "1 4", "5 8", "9 12", "13 14": 64 MiB come back per call)
    bash scripts/gpu_checkpoint_parts.sh send "runs/paper_arch_$DATASET" "$OUT" ${PARTS:-1 4}
    exit 0 ;;
  1)
    if [ -n "${PROBE:-}" ]; then  # both memory formats timed first (~1-2 min), the faster one used below
      FMQ_DATA_DIR=runs/data_$DATASET python3 scripts/gpu_paper_arch.py probe --dataset "$DATASET" \
        --batch-size "${TRAIN_BATCH:-256}" 2>&1 | grep --line-buffered -v "$FILTER" | tee runs/logs/probe.log
    fi
    # RESUME=1: a later command trains on from the saved state (step count, EMA, optimizer, wall time)
    FMQ_DATA_DIR=runs/data_$DATASET python3 scripts/gpu_paper_arch.py train --dataset "$DATASET" --epochs "${EPOCHS:-15}" \
      --minutes "${TRAIN_MIN:-9.4}" --batch-size "${TRAIN_BATCH:-256}" --memory-format "$(faster train_images_per_s)" \
      ${RESUME:+--resume} ${DETERMINISTIC:+--deterministic} 2>&1 | grep --line-buffered -v "$FILTER" >> runs/logs/train.log
    cat runs/logs/train.log ;;
  2|3|4)
    if [ "$STAGE" = 2 ] && [ -z "${NO_BENCH:-}" ]; then  # the speed benchmark first, on an idle GPU
      mkdir -p "$OUT/bench"
      timeout "${BENCH_S:-200}" python3 benchmarks/gpu.py ${BENCH_ONLY:+--only "$BENCH_ONLY"} --out "$OUT/bench" 2>&1 \
        | grep --line-buffered -v "$FILTER" > runs/logs/bench.log
      cat runs/logs/bench.log
    fi
    used=$(( $(date +%s) - start ))
    secs=$(case "$STAGE" in 2) echo $(( ${S2:-400} - used ));; 3) echo "${S3:-200}";; 4) echo "${S4:-250}";; esac)
    # a hard stop per call, so that the results are copied out before the call's own limit
    case "$STAGE" in 2) hard=${H2:-555};; 3) hard=${H3:-300};; 4) hard=${H4:-330};; esac
    export HARD_S=$(( hard - used ))
    JOBS=${JOBS:-paper small plan}  # which evaluations run side by side
    [[ " $JOBS " == *" paper "* ]] && paper_eval "$secs" > runs/logs/paper$STAGE.log 2>&1 &
    [[ " $JOBS " == *" small "* ]] && plan_small "$secs" > runs/logs/small$STAGE.log 2>&1 &
    [[ " $JOBS " == *" comp "* ]] && plan_comp "$secs" > runs/logs/comp$STAGE.log 2>&1 &
    [[ " $JOBS " == *" plan "* ]] && plan_paper "$secs" > runs/logs/plan_paper$STAGE.log 2>&1 &
    [[ " $JOBS " == *" bias "* ]] && plan_bias "$secs" > runs/logs/bias$STAGE.log 2>&1 &
    [[ " $JOBS " == *" variants "* ]] && plan_variants > runs/logs/variants$STAGE.log 2>&1 &
    wait
    cat runs/logs/{paper,small,comp,plan_paper,bias,variants}$STAGE.log 2>/dev/null ;;
esac
echo "stage $STAGE: $(( $(date +%s) - start )) s"
cp runs/results/plan_{dit,mnist,fashion_mnist,paper_arch,paper_arch_fashion_mnist}.csv "$OUT"/ 2>/dev/null  # at most 8 files come back
cp runs/results/plan_variants.json "$OUT"/ 2>/dev/null
cp runs/results_bias/plan_dit.csv "$OUT"/plan_dit_bias.csv 2>/dev/null
for f in runs/results_comp/plan_*.csv; do  # the compensated plan's tables and their choices (plan_comp)
  [ -f "$f" ] && case "$f" in */plan_choices_*) ;; *) cp "$f" "$OUT/$(basename "$f" .csv)_compensated.csv";; esac
done
(cd runs/results_comp 2>/dev/null && ls plan_choices_*.csv >/dev/null 2>&1 && tar czf "$OUT/choices_compensated.tgz" plan_choices_*.csv)
(cd runs/results && ls plan_choices_*.csv >/dev/null 2>&1 && tar czf "$OUT/choices.tgz" plan_choices_*.csv)
cp runs/paper_arch_$DATASET/paper_arch_$DATASET.csv "$OUT"/ 2>/dev/null
cp runs/paper_arch_$DATASET/train.json "$OUT"/paper_arch_${DATASET}_train.json 2>/dev/null
cp runs/paper_arch_$DATASET/probe.json "$OUT"/paper_arch_${DATASET}_probe.json 2>/dev/null
tar czf "$OUT/logs.tgz" runs/logs
ls -la "$OUT"
