"""params.yaml for the device run: many seeds, the arms' four models side by side, the arms' GAN on the CPU."""

import yaml

with open("params.yaml") as f:
    p = yaml.safe_load(f)
d = p["evaluate"]["downstream"]
d["seeds"] = list(range(96))
d["workers"] = 4
p["augment"]["device"] = "cpu"
with open("params.yaml", "w") as f:
    yaml.safe_dump(p, f, sort_keys=False)
print("seeds 0-95, workers", d["workers"], "sizes", d["sizes"], "threads", d["threads"])
