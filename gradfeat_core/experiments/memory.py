"""Where the data set and the frozen caches live: on the device while they fit its budget
(`cache.device_gib`), else in host memory, pinned on CUDA, each batch copied to the device when
it is indexed. On the CPU host and device memory are one, so nothing moves unless a budget is set."""
import torch

DEVICE_SHARE = 0.75  # cache.device_gib null: this share of the GPU's memory, the rest for the model


def device_budget(device, gib=None):
    """Bytes the data set and frozen caches may take on `device`: `gib` GiB when set, else
    DEVICE_SHARE of a GPU's memory, else None (no limit: the CPU's memory is the host's)."""
    device = torch.device(device)
    if gib is not None:
        return gib * 2**30
    if device.type == "cuda":
        return DEVICE_SHARE * torch.cuda.get_device_properties(device).total_memory
    return None


def fits(size, budget, beside=0):
    """Whether `size` bytes fit a device budget (bytes; None: no limit) beside `beside` bytes
    already on the device: the one rule for the images (data.load_dataset), the frozen caches
    (run.cache_on_host) and --dry-run's estimate (plan.estimate)."""
    return budget is None or beside + size <= budget


def nbytes(value):
    """Bytes of a tensor, a HostResident or a {name: tensor} dict of them."""
    values = value.values() if isinstance(value, dict) else [value]
    return sum(v.numel() * v.element_size() for v in values)


class HostResident:
    """A tensor kept in host memory (pinned when `device` is CUDA, so that copies overlap
    compute) that hands out every batch indexed from it on `device`. It stands in for a device
    tensor wherever data or caches are read by batch: len, shape, dtype, device, indexing.
    decode: applied to each batch on the device (images kept as uint8 and made float32 there,
    data._decoded: a quarter of the host memory); dtype is then float32."""

    def __init__(self, host, device, decode=None):
        self.device, self.decode = torch.device(device), decode
        host = host.detach().cpu()
        self.host = host.pin_memory() if self.device.type == "cuda" else host
        self.shape, self.dtype = self.host.shape, torch.float32 if decode else self.host.dtype

    def __len__(self):
        return len(self.host)

    def numel(self):
        return self.host.numel()

    def element_size(self):
        return self.host.element_size()

    def __getitem__(self, idx):
        if isinstance(idx, torch.Tensor):
            idx = idx.cpu()
        batch = self.host[idx].to(self.device, non_blocking=True)
        return self.decode(batch) if self.decode else batch


def host_resident(value, device):
    """HostResident of a tensor, or of each tensor of a {name: tensor} dict."""
    if isinstance(value, dict):
        return {k: HostResident(v, device) for k, v in value.items()}
    return HostResident(value, device)


def gib(n):
    return f"{n / 2**30:.3g} GiB"
