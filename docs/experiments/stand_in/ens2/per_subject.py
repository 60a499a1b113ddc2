"""T1c alone and T1c + T2 per subject: the stand-in's pair of networks against the default's two pairs (run from the repository root)."""
import csv, glob
B = "(B) proposed, one model, missing inputs"
X = "docs/experiments"
def L(p): return {(r["subject"], r["subset"]): float(r["mse"]) for f in glob.glob(f"{X}/{p}/subsets.csv") for r in csv.DictReader(open(f)) if r["method"] == B}
new, d01, d23 = L("stand_in/ens2/fold*"), L("decoder_sees_inputs/ens2/fold*"), L("default_stop35/ens23/fold*")
print("| subject | subset | default, seeds 0+1 | default, seeds 2+3 | stand-in, seeds 0+1 | ratio to the default's pairs' mean |")
print("|---|---|---|---|---|---|")
for subset in ("t1c", "t1c+t2"):
    for key in sorted(k for k in new if k[1] == subset):
        print(f"| {key[0]} | {subset} | {d01[key]:.4f} | {d23[key]:.4f} | {new[key]:.4f} | {new[key] / ((d01[key] + d23[key]) / 2):.2f} |")
