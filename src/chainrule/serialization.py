"""Being written: cr.save / cr.load in the safetensors format."""
