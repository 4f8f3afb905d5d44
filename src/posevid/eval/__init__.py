"""posevid.eval"""
