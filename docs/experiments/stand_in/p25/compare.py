"""Per subject and subset, then per subset over the pilot's subjects (sums of MSE): --stand-in-probability 0.25 (seed 0) against 0.5 (seed 0) and the default's four seeds (run from the repository root)."""
import csv, glob
B = "(B) proposed, one model, missing inputs"
X = "docs/experiments"
def L(p): return {(r["subject"], r["subset"]): float(r["mse"]) for f in glob.glob(f"{X}/{p}/subsets.csv") for r in csv.DictReader(open(f)) if r["method"] == B}
p25, p50 = L("stand_in/p25/fold*"), L("stand_in/fold*")
seeds = [L(p) for p in ("decoder_sees_inputs/fold*", "decoder_sees_inputs/seed1/fold*", "default_stop35/seed2/fold*", "default_stop35/seed3/fold*")]
print("| subject | subset | default, mean of seeds 0-3 | stand-in 0.5 | stand-in 0.25 | 0.5 / mean | 0.25 / mean |")
print("|---|---|---|---|---|---|---|")
for key in sorted(p25):
    mean = sum(s[key] for s in seeds) / len(seeds)
    print(f"| {key[0]} | {key[1]} | {mean:.4f} | {p50[key]:.4f} | {p25[key]:.4f} | {p50[key] / mean:.2f} | {p25[key] / mean:.2f} |")
print()
print("| subset | subjects | 0.5 / mean | 0.25 / mean |")
print("|---|---|---|---|")
for subset in sorted({key[1] for key in p25}):
    keys = [key for key in p25 if key[1] == subset]
    mean = sum(sum(s[key] for s in seeds) / len(seeds) for key in keys)
    print(f"| {subset} | {len(keys)} | {sum(p50[key] for key in keys) / mean:.2f} | {sum(p25[key] for key in keys) / mean:.2f} |")
