"""Per subject and subset: the stand-in run (seed 0) against each of four seeds of the default, and the rows' means."""
import csv, glob, statistics as st, sys
B = "(B) proposed, one model, missing inputs"
X = "docs/experiments"  # run from the repository root
def L(p): return {(r["subject"], r["subset"]): float(r["mse"]) for f in glob.glob(p + "/subsets.csv") for r in csv.DictReader(open(f)) if r["method"] == B}
new = L(sys.argv[1] if len(sys.argv) > 1 else f"{X}/stand_in/fold*")
seeds = [L(f"{X}/decoder_sees_inputs/fold*"), L(f"{X}/decoder_sees_inputs/seed1/fold*"), L(f"{X}/default_stop35/seed2/fold*"), L(f"{X}/default_stop35/seed3/fold*")]
rows = sorted({k[1] for k in new})
print("subset  n  stand-in  seed0  mean4  ratio_s0  ratio_mean4  subjects_below_all4")
for subset in rows:
    keys = [k for k in new if k[1] == subset]
    a = st.mean(new[k] for k in keys); s0 = st.mean(seeds[0][k] for k in keys); m4 = st.mean(st.mean(s[k] for s in seeds) for k in keys)
    below = sum(new[k] < min(s[k] for s in seeds) for k in keys)
    print(f"{subset:10s} {len(keys)} {a:.4f} {s0:.4f} {m4:.4f} {a/s0:.3f} {a/m4:.3f} {below}/{len(keys)}")
