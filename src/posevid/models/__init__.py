"""posevid.models"""
