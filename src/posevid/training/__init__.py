"""posevid.training"""
