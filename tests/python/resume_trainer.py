"""One rank of a small torch training job with a RemoteLRScheduler, driven line by line over
stdin by test_python_resume.py, so that the test decides exactly when each rank loads, steps and
is killed (kill -9 after any reply; no sleeps).

    resume_trainer.py SERVER NAME CKPT_DIR RANK CONFIG_JSON    (environment: LRSCHED_LAUNCH_ID)

Commands (one per line; each is answered with one JSON line on stdout):
  load PATH   torch's order: model, optimizer and scheduler were built at start; now load the
              model's, the optimizer's and the scheduler's state from checkpoint PATH
  step        trains one epoch (reporting the lr and momentum it trained with), then
              sched.step(); rank 0 saves a checkpoint (torch.save) every `ckpt_every` epochs
  params      the model's parameters, as float.hex() strings
  exit        closes the scheduler and exits 0

A ResumeWarning is an error here: a correct restart must not warn. Not a test module.
"""
import json
import os
import sys
import warnings

import torch

from lrsched._resume import ResumeWarning
from lrsched.torch import RemoteLRScheduler


def model_and_optimizer(cfg):
    torch.manual_seed(cfg["seed"])
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=0.9)
    return model, opt


def train_one_epoch(model, opt, epoch):
    """One deterministic batch per epoch (CPU, one thread: the same bits in every process)."""
    g = torch.Generator().manual_seed(1000 + epoch)
    x = torch.randn(8, 4, generator=g)
    y = x.sum(dim=1, keepdim=True)
    opt.zero_grad()
    torch.nn.functional.mse_loss(model(x), y).backward()
    opt.step()


def params_hex(model):
    return [v.hex() for p in model.parameters() for v in p.detach().flatten().tolist()]


def main():
    server, name, ckpt_dir, rank, cfg = sys.argv[1:6]
    rank, cfg = int(rank), json.loads(cfg)
    warnings.simplefilter("error", ResumeWarning)
    torch.set_num_threads(1)
    model, opt = model_and_optimizer(cfg)
    sched = RemoteLRScheduler(opt, cfg["scheduler"], name=name, server=server)
    epoch = 0

    def reply(**kw):
        sys.stdout.write(json.dumps(kw) + "\n")
        sys.stdout.flush()

    reply(ready=True, last_epoch=sched.last_epoch)
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "load":
            ckpt = torch.load(cmd[1])
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
            epoch = ckpt["epoch"]
            reply(loaded=epoch, last_epoch=sched.last_epoch)
        elif cmd[0] == "step":
            group = opt.param_groups[0]
            lr, momentum = group["lr"], group["momentum"]
            train_one_epoch(model, opt, epoch)
            sched.step()
            epoch += 1
            if rank == 0 and epoch % cfg["ckpt_every"] == 0:
                path = os.path.join(ckpt_dir, f"ckpt-{epoch}.pt")
                torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                            "scheduler": sched.state_dict(), "epoch": epoch}, path + ".tmp")
                os.replace(path + ".tmp", path)
            reply(epoch=epoch - 1, lr=lr.hex(), momentum=momentum.hex(),
                  last_epoch=sched.last_epoch)
        elif cmd[0] == "params":
            reply(params=params_hex(model))
        elif cmd[0] == "exit":
            sched.close()
            reply(bye=True)
            return


if __name__ == "__main__":
    main()
